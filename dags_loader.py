"""Metaflow flows as Airflow DAGs: copy this file into Airflow's dags/ folder and set
METAFLOW_AIRFLOW_STORE to the store your flows are published to (on Amazon MWAA, export it in
a startup script)."""

# Airflow's DAG processor imports the airflow modules that a DAG file imports once, in its own
# long-lived process, before it forks the process that parses the file (the on-by-default
# parsing_pre_import_modules option): naming the Kubernetes provider's operator here spares each
# parse its import (docs/performance.md). The provider comes with the metaflow-airflow[airflow]
# extra.
import airflow.providers.cncf.kubernetes.operators.pod  # noqa: F401

from metaflow_airflow import load_dags

load_dags(globals())
