"""Talking to a running Airflow through its public REST API (v2 on Airflow 3, v1 on Airflow 2):
trigger a published flow with typed parameters, follow its run, list its runs, stop it."""
