"""The one place that knows how Airflow 2 and 3 (and provider versions) differ."""

from __future__ import annotations

from airflow import __version__ as AIRFLOW_VERSION
from packaging.version import Version

AIRFLOW_V_3_0_PLUS = Version(Version(AIRFLOW_VERSION).base_version) >= Version("3.0.0")

if AIRFLOW_V_3_0_PLUS:  # Airflow 3 moved authoring objects to the Task SDK.
    from airflow.sdk import DAG, BaseOperator, Param, task_group
else:  # pragma: no cover - exercised by the Airflow 2 tox environments
    from airflow.decorators import task_group
    from airflow.models import DAG, BaseOperator
    from airflow.models.param import Param

__all__ = ["AIRFLOW_V_3_0_PLUS", "DAG", "BaseOperator", "Param", "task_group"]


def serialize_dag(dag: DAG) -> dict:
    """Airflow's serialized form of a DAG: what Airflow 3 compares to decide on a new version."""
    from airflow.serialization import serialized_objects

    # Airflow 3.3 renamed SerializedDAG to DagSerialization.
    serializer = getattr(serialized_objects, "DagSerialization", None) or getattr(
        serialized_objects, "SerializedDAG"
    )
    return serializer.to_dict(dag)
