"""Manifest → Airflow DAG objects: the factory, foreach mapping, sensors, placeholders, and the
task tree that ``render`` prints."""
