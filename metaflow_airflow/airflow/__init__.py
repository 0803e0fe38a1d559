"""The Airflow side: the loader, the DAG factory, the operators, the UI. Imports Airflow, never
Metaflow nor the publish side; every Airflow-version difference is in ``compat``."""
