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

from airflow.timetables.trigger import CronTriggerTimetable

__all__ = [
    "AIRFLOW_V_3_0_PLUS",
    "DAG",
    "BaseOperator",
    "CronTriggerTimetable",
    "Param",
    "external_task_sensor_class",
    "s3_key_sensor_class",
    "serialize_dag",
    "task_group",
]


def external_task_sensor_class() -> type:
    """ExternalTaskSensor moved to the standard provider with Airflow 3."""
    try:
        from airflow.providers.standard.sensors.external_task import ExternalTaskSensor
    except ImportError:  # Airflow 2 without the standard provider
        from airflow.sensors.external_task import ExternalTaskSensor
    return ExternalTaskSensor


def s3_key_sensor_class() -> type:
    """S3KeySensor comes with the Amazon provider, which Airflow does not install by default."""
    try:
        from airflow.providers.amazon.aws.sensors.s3 import S3KeySensor
    except ImportError as exc:
        raise ImportError(
            "@airflow_s3_key_sensor needs the Amazon provider: "
            "pip install apache-airflow-providers-amazon"
        ) from exc
    return S3KeySensor


def serialize_dag(dag: DAG) -> dict:
    """Airflow's serialized form of a DAG: what Airflow 3 compares to decide on a new version."""
    from airflow.serialization import serialized_objects

    # Airflow 3.3 renamed SerializedDAG to DagSerialization.
    serializer = getattr(serialized_objects, "DagSerialization", None) or getattr(
        serialized_objects, "SerializedDAG"
    )
    return serializer.to_dict(dag)
