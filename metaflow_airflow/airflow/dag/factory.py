"""Manifest → Airflow DAG: one task per step, foreach bodies as mapped task groups.

A foreach body is mapped over the split indexes its foreach task returns; the body of a nested
foreach (whose foreach step is itself mapped) over the pairs a flattening task collects (see
``compute/foreach_splits``). A step after a conditional runs when the branch that was taken
succeeded (a run whose ``end`` did not run fails, see ``_trigger_rule``).

The DAG depends only on the manifest (no clock, no randomness, sorted iteration), so the same
manifest always serializes to the same DAG and Airflow 3 does not version it on every parse.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from metaflow_airflow.airflow.compat import (
    DAG,
    Asset,
    BaseOperator,
    CronTriggerTimetable,
    Param,
    asset_schedule,
    task_group,
)
from metaflow_airflow.airflow.compute.foreach_splits import ForeachSplitsOperator
from metaflow_airflow.airflow.dag.sensors import build_sensor
from metaflow_airflow.airflow.ui import dag_doc_md
from metaflow_airflow.manifest.models import (
    FlowManifest,
    ManifestSource,
    ParameterSpec,
    ScheduleSpec,
    StepSpec,
)
from metaflow_airflow.runtime.invocation import START_STEP, meets_branches

_JSON_SCHEMA_TYPES = {"str": "string", "int": "integer", "float": "number", "bool": "boolean"}

MakeTask = Callable[[StepSpec], BaseOperator]

# ``@timeout`` fires inside the step, as under ``run`` (so ``@catch`` keeps Metaflow's
# TimeoutException); Airflow's execution_timeout is only the backstop for a step that does not
# stop, this much later: process start and code unpack, and for a pod also its start
# (KubernetesPodOperator's startup_timeout_seconds, 120 by default).
TIMEOUT_BACKSTOP_SECONDS = {"local": 20, "kubernetes": 20 + 120}


def build_dag(
    manifest: FlowManifest,
    manifest_url: str | None = None,
    *,
    source: ManifestSource | None = None,
    dag_id_prefix: str = "",
) -> DAG:
    """The Airflow DAG for one published flow; ``manifest_url`` (where the loader read it) is
    shown in the DAG's documentation. The tasks find their manifest through ``source`` when they
    run (the loader's cache, a ``CachedManifest``), else keep ``manifest``. Its DAG id is the
    manifest's, after ``dag_id_prefix`` (the loader's setting)."""
    make_task = _task_factory(manifest, source or HeldManifest(manifest))
    with DAG(
        dag_id=dag_id_prefix + manifest.dag_id,
        description=_first_line(manifest.description) or f"Metaflow flow {manifest.flow_name}",
        doc_md=dag_doc_md(manifest, manifest_url),
        schedule=_schedule(manifest),
        start_date=manifest.published_at,
        catchup=False,
        params={p.name: airflow_param(p) for p in manifest.parameters},
        tags=sorted({"metaflow", *manifest.tags}),
        default_args=_default_args(manifest),
        is_paused_upon_creation=manifest.deployment.is_paused_upon_creation,
        auto_register=False,  # the loader decides which DAGs the file defines
    ) as dag:
        tasks: dict[str, BaseOperator] = {}
        for sensor in manifest.sensors:
            tasks[sensor.task_id] = build_sensor(sensor)
        for step in manifest.steps:
            if step.foreach is None:  # body steps are built inside their foreach's group
                tasks[step.name] = make_task(step)
        for foreach in manifest.steps:  # topological: an outer body exists before an inner one
            if foreach.type == "foreach":
                tasks.update(_foreach_body(manifest, foreach, tasks, make_task))
        for step in manifest.steps:
            for parent in step.parents:
                tasks[parent] >> tasks[step.name]
        for sensor in manifest.sensors:
            tasks[sensor.task_id] >> tasks[START_STEP]
    return dag


def _schedule(manifest: FlowManifest) -> Any:
    """``@schedule`` → a cron timetable; ``@trigger``/``@trigger_on_finish`` → the Assets they
    name, all of which must have new events; both → whichever comes first."""
    timetable = _timetable(manifest.schedule)
    if not manifest.triggers:
        return timetable
    return asset_schedule([t.asset_uri for t in manifest.triggers], timetable)


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
    manifest: FlowManifest,
    foreach: StepSpec,
    tasks: dict[str, BaseOperator],
    make_task: MakeTask,
) -> dict[str, BaseOperator]:
    """Map the body over the foreach's splits; inside a mapped group, task i of a step
    waits only for task i of the step before it."""
    body: dict[str, BaseOperator] = {}
    splits = tasks[foreach.name]
    if foreach.foreach is not None:  # a mapped foreach: flatten its tasks' split lists first
        splits = ForeachSplitsOperator(foreach=foreach.name)
        tasks[foreach.name] >> splits

    @task_group(group_id=f"{foreach.name}_foreach", prefix_group_id=False)
    def mapped_body(split_index: int) -> None:
        for step in manifest.steps:
            if step.foreach == foreach.name:
                body[step.name] = make_task(step)

    mapped_body.expand(split_index=splits.output)
    return body


def airflow_param(spec: ParameterSpec) -> Param:
    """A typed Airflow Param; a required Metaflow Parameter has no default. One with a default
    also takes ``null`` (an emptied form field: the step gets the default), so the trigger
    form does not mark it as required."""
    kwargs: dict[str, Any] = {"description": spec.help or None}
    if spec.required:
        if spec.type in _JSON_SCHEMA_TYPES:
            kwargs["type"] = _JSON_SCHEMA_TYPES[spec.type]
        return Param(**kwargs)
    if spec.type in _JSON_SCHEMA_TYPES:
        kwargs["type"] = [_JSON_SCHEMA_TYPES[spec.type], "null"]
    return Param(spec.default, **kwargs)


@dataclass(frozen=True)
class HeldManifest:
    """The manifest itself, as the tasks' ``ManifestSource``."""

    manifest: FlowManifest


def _task_factory(manifest: FlowManifest, source: ManifestSource) -> MakeTask:
    kubernetes = manifest.compute.kind == "kubernetes"
    if kubernetes:
        from metaflow_airflow.airflow.compute.kubernetes import (
            MetaflowKubernetesOperator as operator,
        )
        from metaflow_airflow.airflow.compute.kubernetes import pod_arguments
    else:
        from metaflow_airflow.airflow.compute.local import MetaflowLocalOperator as operator

    def make_task(step: StepSpec) -> BaseOperator:
        compute_arguments = pod_arguments(manifest, step) if kubernetes else {}
        task = operator(task_id=step.name, **compute_arguments, **task_arguments(manifest, step))
        task.bind(source, step.name)  # after __init__: see the operators' docs
        return task

    return make_task


def task_arguments(manifest: FlowManifest, step: StepSpec) -> dict[str, Any]:
    """What any compute's operator gets from the step: retries, timeout, concurrency, docs."""
    arguments: dict[str, Any] = {"retries": step.retries, "doc_md": step.doc or None}
    arguments["trigger_rule"] = _trigger_rule(step)
    if step.retry_delay_seconds is not None:
        arguments["retry_delay"] = timedelta(seconds=step.retry_delay_seconds)
    if step.timeout_seconds is not None:
        backstop = step.timeout_seconds + TIMEOUT_BACKSTOP_SECONDS[manifest.compute.kind]
        arguments["execution_timeout"] = timedelta(seconds=backstop)
    if step.type == "end":  # a successful run emits the flow's Asset (@trigger_on_finish)
        arguments["outlets"] = [Asset(manifest.finish_asset_uri)]
    if step.foreach is not None and manifest.deployment.max_workers:
        arguments["max_active_tis_per_dagrun"] = manifest.deployment.max_workers
    return arguments


def _trigger_rule(step: StepSpec) -> str:
    """Where branches meet, a conditional upstream may have skipped some: the step runs on
    those that ran. ``end`` is never skipped: if nothing it needs ran, it runs, finds no input
    and fails (see ``compute.context.resolve_or_fail``), so a run succeeds only when Metaflow's
    ``end`` ran (Airflow counts a run whose last tasks were skipped as a success)."""
    if step.type == "end":
        return "none_failed"
    if meets_branches(step):
        return "none_failed_min_one_success"
    return "all_success"


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0] if text.strip() else ""
