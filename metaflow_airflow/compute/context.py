"""Reading a :class:`~metaflow_airflow.runtime.TaskRef` out of an Airflow task context."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..manifest import StepSpec
from ..runtime import TaskRef


def task_ref_from_context(context: Mapping[str, Any], step: StepSpec) -> TaskRef:
    """The facts that fix this task's Metaflow ids; a foreach join also reads the split count
    its foreach step returned as XCom."""
    ti = context["ti"]
    split_counts = {}
    if step.joins_foreach:
        splits = ti.xcom_pull(task_ids=step.joins_foreach)
        split_counts[step.joins_foreach] = len(splits or [])
    map_index = getattr(ti, "map_index", -1)
    return TaskRef(
        dag_id=ti.dag_id,
        airflow_run_id=context["run_id"],
        map_index=-1 if map_index is None else int(map_index),
        try_number=int(ti.try_number),
        params=dict(context.get("params") or {}),
        split_counts=split_counts,
    )
