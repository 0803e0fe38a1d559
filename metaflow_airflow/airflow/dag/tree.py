"""The task tree of a built DAG, as text: what ``metaflow-airflow render`` prints.

It shows the DAG exactly as the loader builds it (the same
:func:`~metaflow_airflow.airflow.dag.factory.build_dag`), so an operator can see which operator
runs each step, which steps are mapped over a foreach, and what each task waits for, without
opening the Airflow UI.
"""

from __future__ import annotations

from typing import Any

from metaflow_airflow.airflow.compat import MappedTaskGroup, timetable_summary


def dag_tree(dag: Any) -> list[str]:
    """One line per task group and task, in run order (depth from the first task, then the
    order the factory created them)."""
    schedule = getattr(dag, "timetable", None)
    header = f"{dag.dag_id}  ({len(dag.tasks)} tasks; schedule: {timetable_summary(schedule)})"
    depth: dict[str, int] = {}
    for task in dag.tasks:
        _depth(dag, task.task_id, depth)
    return [header, *_children(dag.task_group, depth, prefix="")]


def _depth(dag: Any, task_id: str, depth: dict[str, int]) -> int:
    if task_id not in depth:
        upstream = dag.get_task(task_id).upstream_task_ids
        depth[task_id] = 1 + max((_depth(dag, u, depth) for u in upstream), default=-1)
    return depth[task_id]


def _first(child: Any, depth: dict[str, int]) -> int:
    if hasattr(child, "children"):
        return min((_first(c, depth) for c in child.children.values()), default=0)
    return depth[child.task_id]


def _children(group: Any, depth: dict[str, int], prefix: str) -> list[str]:
    lines: list[str] = []
    children = sorted(group.children.values(), key=lambda child: _first(child, depth))
    for position, child in enumerate(children):
        last = position == len(children) - 1
        branch, inner = ("└─ ", "   ") if last else ("├─ ", "│  ")
        if hasattr(child, "children"):  # a task group
            lines.append(f"{prefix}{branch}{child.group_id}  [{_group_kind(child)}]")
            lines += _children(child, depth, prefix + inner)
        else:
            lines.append(f"{prefix}{branch}{_task_line(child)}")
    return lines


def _group_kind(group: Any) -> str:
    if isinstance(group, MappedTaskGroup):
        upstream = sorted(group.upstream_task_ids) or ["?"]
        return f"mapped task group: one instance per split of {', '.join(upstream)}"
    return "task group"


def _task_line(task: Any) -> str:
    after = sorted(task.upstream_task_ids)
    waits = f"  ← {', '.join(after)}" if after else ""
    return f"{task.task_id}  [{type(task).__name__}]{waits}"
