"""What every compute does around a step: read its Airflow facts before, hand back its outcome
after (task id, foreach splits, the branch a conditional took)."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from metaflow_airflow.airflow.compat import (
    AirflowFailException,
    AirflowSkipException,
    Asset,
    mapped_xcoms,
    triggering_asset_extras,
)
from metaflow_airflow.airflow.compute.foreach_splits import splits_task_id
from metaflow_airflow.manifest.models import FlowManifest, ManifestSource, StepSpec
from metaflow_airflow.runtime.invocation import (
    NEXT_STEPS_KEY,
    START_STEP,
    TASK_ID_XCOM_KEY,
    MissingInputs,
    StepInvocation,
    TaskRef,
    event_parameter_values,
    meets_branches,
    resolve_invocation,
    split_indexes,
    splits_needed,
)
from metaflow_airflow.runtime.run_conf import run_conf_problems
from metaflow_airflow.settings import get_settings

log = logging.getLogger(__name__)


class BoundStep:
    """The manifest and step a Metaflow operator runs, bound by the factory after construction
    (see the operators). The manifest is looked up through its source when it is needed: the
    tasks of a full parse hold the loader's cache, not a parsed manifest."""

    manifest_source: ManifestSource
    step_name: str

    def bind(self, source: ManifestSource, step_name: str) -> None:
        self.manifest_source = source
        self.step_name = step_name

    @property
    def manifest(self) -> FlowManifest:
        return self.manifest_source.manifest

    @property
    def step(self) -> StepSpec:
        return self.manifest.steps_by_name[self.step_name]


def task_ref_from_context(
    context: Mapping[str, Any], manifest: FlowManifest, step: StepSpec
) -> TaskRef:
    """The facts that fix this task's Metaflow ids, with the split lists and taken branches
    it needs from upstream XComs."""
    ti = context["ti"]
    map_index = getattr(ti, "map_index", -1)
    map_index = -1 if map_index is None else int(map_index)
    _skip_unless_chosen(ti, manifest, step, map_index)
    foreach_splits = {
        name: _splits(ti, manifest.steps_by_name[name]) for name in splits_needed(manifest, step)
    }
    ran_parents = body_end_task_ids = None
    if step.joins_foreach and meets_branches(step):
        width = len(foreach_splits[step.joins_foreach])
        body_end_task_ids = {parent: _task_ids_left(ti, parent, width) for parent in step.parents}
    elif meets_branches(step):
        ran_parents = tuple(
            parent
            for parent in step.parents
            if _task_id_of(ti, manifest.steps_by_name[parent], step, map_index) is not None
        )
    return TaskRef(
        dag_id=ti.dag_id,
        airflow_run_id=context["run_id"],
        map_index=map_index,
        try_number=int(ti.try_number),
        params=_parameter_values(context, manifest, step),
        foreach_splits=foreach_splits,
        ran_parents=ran_parents,
        body_end_task_ids=body_end_task_ids,
    )


def resolve_or_fail(manifest: FlowManifest, step: StepSpec, ref: TaskRef) -> StepInvocation:
    """:func:`resolve_invocation`; a step with no input that ran fails without retries (a
    skipped branch must never let the run go on, or end, as if it had run)."""
    try:
        return resolve_invocation(manifest, step, ref)
    except MissingInputs as missing:
        raise AirflowFailException(f"the run cannot go on: {missing}") from None


def _parameter_values(
    context: Mapping[str, Any], manifest: FlowManifest, step: StepSpec
) -> dict[str, Any]:
    """The run's params; in a run that asset events triggered, the start step also takes the
    values ``@trigger`` maps from their payloads (the events' ``extra``), unless the run's conf
    gives them. The start step (the one that passes them to Metaflow) refuses values that
    cannot reach it and conf keys that are no Parameter, before anything runs."""
    params = dict(context.get("params") or {})
    if step.name != START_STEP:
        return params
    dag_run = context.get("dag_run")
    conf = (getattr(dag_run, "conf", None) or {}) if dag_run is not None else {}
    if any(getattr(trigger, "parameters", None) for trigger in manifest.triggers):
        params.update(event_parameter_values(manifest, triggering_asset_extras(context), conf))
    _refuse_unfit_values(manifest, {**conf, **params})
    return params


def _refuse_unfit_values(manifest: FlowManifest, values: Mapping[str, Any]) -> None:
    refused, unknown = run_conf_problems(manifest.parameters, values)
    if unknown and get_settings().unknown_run_conf == "warn":
        log.warning("metaflow-airflow: the run's conf is ignored for: %s", "; ".join(unknown))
        unknown = []
    if refused or unknown:
        raise AirflowFailException(f"the run's conf is refused: {'; '.join(refused + unknown)}")


def _splits(ti: Any, foreach: StepSpec) -> list[tuple[int, int]]:
    if foreach.foreach is None:  # one foreach task: its XCom is the list of split indexes
        return [(-1, split) for split in ti.xcom_pull(task_ids=foreach.name) or []]
    pairs = ti.xcom_pull(task_ids=splits_task_id(foreach.name)) or []
    return [(int(parent), int(split)) for parent, split in pairs]


def _skip_unless_chosen(ti: Any, manifest: FlowManifest, step: StepSpec, map_index: int) -> None:
    """Inside a mapped foreach body, Airflow 3 runs the steps a conditional did not choose
    (apache/airflow#67265: the skip is looked up at map index -1): a step right after a
    conditional of its own body skips itself when that conditional, for its split, chose
    another step. Airflow 2 has already skipped it; unmapped tasks are skipped by Airflow."""
    if step.foreach is None or len(step.parents) != 1:
        return
    parent = manifest.steps_by_name[step.parents[0]]
    if parent.type != "split-switch" or parent.foreach != step.foreach:
        return
    chosen = ti.xcom_pull(task_ids=parent.name, key=NEXT_STEPS_KEY, map_indexes=map_index)
    if chosen is not None and step.name not in chosen:
        raise AirflowSkipException(f"the conditional {parent.name} chose {', '.join(chosen)}")


def _task_ids_left(ti: Any, step_name: str, width: int) -> frozenset[str]:
    """The Metaflow task ids the ``width`` mapped tasks of a body step left (skipped ones none)."""
    return frozenset(str(v) for v in mapped_xcoms(ti, step_name, TASK_ID_XCOM_KEY, width))


def _task_id_of(ti: Any, parent: StepSpec, step: StepSpec, map_index: int) -> str | None:
    """The Metaflow task id a parent left, or None when its branch was not taken."""
    if step.foreach is not None and parent.foreach == step.foreach:
        return ti.xcom_pull(task_ids=parent.name, key=TASK_ID_XCOM_KEY, map_indexes=map_index)
    return ti.xcom_pull(task_ids=parent.name, key=TASK_ID_XCOM_KEY)


def hand_back(
    operator: Any,
    context: Mapping[str, Any],
    step: StepSpec,
    invocation: StepInvocation,
    result: Mapping[str, Any] | None,
) -> list[int] | None:
    """After a successful step: record its task id; a foreach returns its split indexes (the
    XCom its body maps over); a conditional skips the branches it did not take; ``end``
    describes the run in the event of the flow's Asset it emits."""
    ti = context["ti"]
    ti.xcom_push(key=TASK_ID_XCOM_KEY, value=invocation.task_id)
    if step.type == "end":
        _describe_finish_event(context, operator.manifest, invocation)
    if step.type == "foreach":
        assert result is not None
        return split_indexes(result)
    if step.type == "split-switch":
        assert result is not None
        chosen = list(result[NEXT_STEPS_KEY])
        ti.xcom_push(key=NEXT_STEPS_KEY, value=chosen)  # read by _skip_unless_chosen
        operator.skip_all_except(ti, chosen)
    return None


def _describe_finish_event(
    context: Mapping[str, Any], manifest: FlowManifest, invocation: StepInvocation
) -> None:
    """The ``extra`` of the event the end task emits on the flow's Asset: the fields of the
    event Metaflow publishes when a run finishes on Argo Workflows."""
    extra: dict[str, Any] = {
        "id": invocation.pathspec,
        "pathspec": invocation.pathspec,
        "flow_name": manifest.flow_name,
        "run_id": invocation.run_id,
        "step_name": invocation.step,
        "task_id": invocation.task_id,
        "dag_id": manifest.dag_id,
    }
    if manifest.project is not None:
        extra.update(
            project_name=manifest.project.name,
            branch_name=manifest.project.branch,
            is_user_branch=manifest.project.branch.startswith("user."),
            is_production=manifest.project.production,
            project_flow_name=manifest.finish_asset_uri.rsplit("/", 1)[1],
        )
    extra["auto-generated-by-metaflow"] = True
    context["outlet_events"][Asset(manifest.finish_asset_uri)].extra = extra
