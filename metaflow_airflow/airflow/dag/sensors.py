"""Metaflow's flow-level Airflow sensors → real Airflow sensors that gate the start step."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from metaflow_airflow.airflow.compat import (
    BaseOperator,
    external_task_sensor_class,
    s3_key_sensor_class,
)
from metaflow_airflow.manifest.events import ExternalTaskSensorSpec, S3KeySensorSpec, SensorSpec


def build_sensor(spec: ExternalTaskSensorSpec | S3KeySensorSpec) -> BaseOperator:
    """One sensor task, with the waiting behaviour the decorator asked for."""
    common: dict[str, Any] = {name: getattr(spec, name) for name in SensorSpec.model_fields}
    for optional in ("pool", "doc"):  # unset: Airflow's own default
        if not common[optional]:
            del common[optional]
    if isinstance(spec, ExternalTaskSensorSpec):
        delta = spec.execution_delta_seconds
        return external_task_sensor_class()(
            external_dag_id=spec.external_dag_id,
            external_task_ids=list(spec.external_task_ids) if spec.external_task_ids else None,
            allowed_states=list(spec.allowed_states),
            failed_states=list(spec.failed_states) if spec.failed_states else None,
            execution_delta=None if delta is None else timedelta(seconds=delta),
            check_existence=spec.check_existence,
            **common,
        )
    keys = spec.bucket_key if isinstance(spec.bucket_key, str) else list(spec.bucket_key)
    optional = {"aws_conn_id": spec.aws_conn_id} if spec.aws_conn_id else {}
    return s3_key_sensor_class()(
        bucket_key=keys,
        bucket_name=spec.bucket_name,
        wildcard_match=spec.wildcard_match,
        verify=spec.verify,
        **optional,
        **common,
    )
