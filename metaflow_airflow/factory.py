"""Manifest → Airflow DAG: one task per step, foreach bodies as mapped task groups.

The DAG depends only on the manifest (no clock, no randomness, sorted iteration), so the same
manifest always serializes to the same DAG and Airflow 3 does not version it on every parse.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

from .compat import DAG, BaseOperator, CronTriggerTimetable, Param, task_group
from .manifest import FlowManifest, ParameterSpec, ScheduleSpec, StepSpec
from .runtime import START_STEP
from .sensors import build_sensor

_JSON_SCHEMA_TYPES = {"str": "string", "int": "integer", "float": "number", "bool": "boolean"}

MakeTask = Callable[[StepSpec], BaseOperator]


def build_dag(manifest: FlowManifest) -> DAG:
    """The Airflow DAG for one published flow."""
    make_task = _task_factory(manifest)
    with DAG(
        dag_id=manifest.dag_id,
        description=_first_line(manifest.description) or f"Metaflow flow {manifest.flow_name}",
        doc_md=manifest.description or None,
        schedule=_timetable(manifest.schedule),
        start_date=manifest.published_at,
        catchup=False,
        params={p.name: airflow_param(p) for p in manifest.parameters},
        tags=sorted({"metaflow", *manifest.tags}),
        default_args=_default_args(manifest),
        is_paused_upon_creation=manifest.deployment.is_paused_upon_creation,
    ) as dag:
        tasks: dict[str, BaseOperator] = {}
        for sensor in manifest.sensors:
            tasks[sensor.task_id] = build_sensor(sensor)
        for step in manifest.steps:
            if step.foreach is not None:
                continue  # built inside its foreach's mapped group
            tasks[step.name] = make_task(step)
            if step.type == "foreach":
                tasks.update(_foreach_body(manifest, step, tasks[step.name], make_task))
        for step in manifest.steps:
            for parent in step.parents:
                tasks[parent] >> tasks[step.name]
        for sensor in manifest.sensors:
            tasks[sensor.task_id] >> tasks[START_STEP]
    return dag


def _timetable(schedule: ScheduleSpec | None) -> CronTriggerTimetable | None:
    if schedule is None:
        return None
    return CronTriggerTimetable(schedule.cron, timezone=schedule.timezone or "UTC")


def _default_args(manifest: FlowManifest) -> dict[str, Any]:
    args: dict[str, Any] = {"owner": manifest.published_by}
    if manifest.deployment.pool:
        args["pool"] = manifest.deployment.pool
    return args


def _foreach_body(
    manifest: FlowManifest, foreach: StepSpec, foreach_task: BaseOperator, make_task: MakeTask
) -> dict[str, BaseOperator]:
    """Map the body over the foreach's split indexes; inside a mapped group, task i of a step
    waits only for task i of the step before it."""
    body: dict[str, BaseOperator] = {}

    @task_group(group_id=f"{foreach.name}_foreach", prefix_group_id=False)
    def mapped_body(split_index: int) -> None:
        for step in manifest.steps:
            if step.foreach == foreach.name:
                body[step.name] = make_task(step)

    mapped_body.expand(split_index=foreach_task.output)
    return body


def airflow_param(spec: ParameterSpec) -> Param:
    """A typed Airflow Param; a required Metaflow Parameter has no default."""
    kwargs: dict[str, Any] = {"description": spec.help or None}
    if spec.type in _JSON_SCHEMA_TYPES:
        kwargs["type"] = _JSON_SCHEMA_TYPES[spec.type]
    if spec.required:
        return Param(**kwargs)
    return Param(spec.default, **kwargs)


def _task_factory(manifest: FlowManifest) -> MakeTask:
    if manifest.compute.kind == "kubernetes":
        from .compute.kubernetes import MetaflowKubernetesOperator as operator
    else:
        from .compute.local import MetaflowLocalOperator as operator

    def make_task(step: StepSpec) -> BaseOperator:
        return operator(manifest=manifest, step=step, **task_arguments(manifest, step))

    return make_task


def task_arguments(manifest: FlowManifest, step: StepSpec) -> dict[str, Any]:
    """What any compute's operator gets from the step: retries, timeout, concurrency, docs."""
    arguments: dict[str, Any] = {"retries": step.retries, "doc_md": step.doc or None}
    if step.retry_delay_seconds is not None:
        arguments["retry_delay"] = timedelta(seconds=step.retry_delay_seconds)
    if step.timeout_seconds is not None:
        arguments["execution_timeout"] = timedelta(seconds=step.timeout_seconds)
    if step.foreach is not None and manifest.deployment.max_workers:
        arguments["max_active_tis_per_dagrun"] = manifest.deployment.max_workers
    return arguments


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0] if text.strip() else ""
