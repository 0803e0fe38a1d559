"""Manifest → Airflow DAG objects: the factory, sensors, placeholders for broken manifests, and
the task tree that ``render`` prints."""
