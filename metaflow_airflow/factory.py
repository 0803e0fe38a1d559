"""Manifest → Airflow DAG: one task per step, foreach bodies as mapped task groups.

The DAG depends only on the manifest (no clock, no randomness, sorted iteration), so the same
manifest always serializes to the same DAG and Airflow 3 does not version it on every parse.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .compat import DAG, BaseOperator, Param, task_group
from .manifest import FlowManifest, ParameterSpec, StepSpec

_JSON_SCHEMA_TYPES = {"str": "string", "int": "integer", "float": "number", "bool": "boolean"}

MakeTask = Callable[[StepSpec], BaseOperator]


def build_dag(manifest: FlowManifest) -> DAG:
    """The Airflow DAG for one published flow."""
    make_task = _task_factory(manifest)
    with DAG(
        dag_id=manifest.dag_id,
        description=_first_line(manifest.description) or f"Metaflow flow {manifest.flow_name}",
        doc_md=manifest.description or None,
        schedule=None,
        start_date=manifest.published_at,
        catchup=False,
        params={p.name: airflow_param(p) for p in manifest.parameters},
        tags=sorted({"metaflow", *manifest.tags}),
        default_args={"owner": manifest.published_by},
    ) as dag:
        tasks: dict[str, BaseOperator] = {}
        for step in manifest.steps:
            if step.foreach is not None:
                continue  # built inside its foreach's mapped group
            tasks[step.name] = make_task(step)
            if step.type == "foreach":
                tasks.update(_foreach_body(manifest, step, tasks[step.name], make_task))
        for step in manifest.steps:
            for parent in step.parents:
                tasks[parent] >> tasks[step.name]
    return dag


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
        return operator(manifest=manifest, step=step, doc_md=step.doc or None)

    return make_task


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0] if text.strip() else ""
