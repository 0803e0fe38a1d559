"""Metaflow run and task ids for Airflow runs, exactly as Metaflow's own integration makes them.

Keeping the scheme means the Client API finds ``airflow-...`` runs and
``python flow.py resume --origin-run-id airflow-...`` works. Pure functions: no Airflow, no Metaflow.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

ID_PREFIX = "airflow"
RUN_HASH_LEN = 12
TASK_HASH_LEN = 8
PARAMETERS_STEP = "_parameters"


def _hashed(parts: Sequence[object], length: int) -> str:
    digest = hashlib.md5("-".join(str(p) for p in parts).encode("utf-8")).hexdigest()
    return f"{ID_PREFIX}-{digest[:length]}"


def metaflow_run_id(airflow_run_id: str, dag_id: str) -> str:
    """``airflow-`` + 12 hex of md5(airflow run id, dag id)."""
    return _hashed([airflow_run_id, dag_id], RUN_HASH_LEN)


def metaflow_task_id(
    airflow_run_id: str, step: str, dag_id: str, map_index: int, *, flow_has_foreach: bool
) -> str:
    """``airflow-`` + 8 hex of md5(run id, step, dag id[, map index when the flow has a foreach])."""
    parts: list[object] = [airflow_run_id, step, dag_id]
    if flow_has_foreach:
        parts.append(map_index)
    return _hashed(parts, TASK_HASH_LEN)


def parameters_task_id(start_task_id: str) -> str:
    """The ``_parameters`` pseudo-task that ``init`` writes, named after the start task."""
    return f"{start_task_id}-params"


def join_input_paths(paths: Sequence[str]) -> str:
    """Metaflow's ``--input-paths`` text: ``prefix:suffix,suffix`` when paths share a prefix."""
    if len(paths) < 2:
        return ",".join(paths)
    run_prefix = paths[0].split("/", 1)[0] + "/"
    if all(p.startswith(run_prefix) for p in paths):
        return run_prefix + ":" + ",".join(p[len(run_prefix) :] for p in paths)
    return ",".join(paths)
