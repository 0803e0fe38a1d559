"""Metaflow flows as Airflow DAGs: copy this file into Airflow's dags/ folder and set
METAFLOW_AIRFLOW_STORE to the store your flows are published to."""

from metaflow_airflow import load_dags

load_dags(globals())
