"""Helpers for tests of Kubernetes compute: the pod a task instance would submit."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from metaflow_airflow.manifest.models import FlowManifest
from metaflow_airflow.runtime.invocation import TaskRef

AIRFLOW_RUN_ID = "manual__2026-01-01T00:00:00+00:00"
FOREACH_SPLITS = 4  # ForeachFlow's items = [1, 2, 3, 4]


def prepared_pod(
    manifest: FlowManifest,
    dag: Any,
    step: str,
    *,
    map_index: int = -1,
    params: Mapping[str, Any] | None = None,
) -> tuple[Any, Any]:
    """The operator of ``step`` and the V1Pod it would submit for one task instance (built
    without a task context, after ``prepare`` with the facts the context would give)."""
    op = dag.get_task(step)
    foreach_splits = {
        s.joins_foreach: [(-1, j) for j in range(FOREACH_SPLITS)]
        for s in manifest.steps
        if s.joins_foreach
    }
    op.prepare(
        TaskRef(
            dag_id=manifest.dag_id,
            airflow_run_id=AIRFLOW_RUN_ID,
            map_index=map_index,
            try_number=1,
            params=dict(params or {}),
            foreach_splits=foreach_splits,
        )
    )
    return op, op.build_pod_request_obj()
