"""Celery settings for Airflow's CeleryExecutor that start each task of a loader DAG warm.

A Celery worker forks a process for each task (Airflow 3's task supervisor, Airflow 2's
``_execute_in_fork``), and that process parses ``dags_loader.py``: it imports metaflow-airflow's
loader and the Kubernetes provider the loader file names for the DAG processor's pre-import,
about 1 s of every task on a 2-core machine where a hand-written BashOperator DAG parses in
0.1 s (docs/performance.md). Celery imports the modules of its ``imports`` setting once, in the
worker before it forks, so every task inherits them. In ``airflow.cfg``::

    [celery]
    celery_config_options = metaflow_airflow.airflow.celery_config.CELERY_CONFIG
"""

from __future__ import annotations

from typing import Any

from airflow.providers.celery.executors.default_celery import DEFAULT_CELERY_CONFIG

# What a task's parse of dags_loader.py imports: the loader, and the operators of both computes
# (the Kubernetes one imports the provider the loader file names);
# tests/integration/airflow/test_celery_config.py checks that nothing else is left to import.
WARM_IMPORTS = (
    "metaflow_airflow.airflow.loader.parse",
    "metaflow_airflow.airflow.loader.clashes",
    "metaflow_airflow.airflow.compute.local",
    "metaflow_airflow.airflow.compute.kubernetes",
)

CELERY_CONFIG: dict[str, Any] = {
    **DEFAULT_CELERY_CONFIG,
    "imports": (*DEFAULT_CELERY_CONFIG.get("imports", ()), *WARM_IMPORTS),
}
