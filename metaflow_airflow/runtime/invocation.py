"""What a task needs to know at run time: its Metaflow run id, task id, input paths, retry count
and split index, resolved from the Airflow task instance. Pure: no Airflow, no Metaflow.

Foreach bodies run as mapped tasks. A body's *splits* are listed in map-index order as
``(parent map index, split index)`` pairs: the parent map index says which task of the foreach
step produced the split (-1 when the foreach step itself is not mapped), so nested foreach
bodies flatten into one mapped list and every task id stays deterministic.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from metaflow_airflow.manifest.models import FlowManifest, ParameterSpec, StepSpec
from metaflow_airflow.runtime.ids import (
    PARAMETERS_STEP,
    join_input_paths,
    metaflow_run_id,
    metaflow_task_id,
    parameters_task_id,
)

START_STEP = "start"  # Metaflow's entry step; its type is that of its transition (e.g. foreach)
# What a foreach or a conditional step hands back after it ran (see command.RESULT_SCRIPT).
SPLIT_COUNT_KEY = "foreach_num_splits"
NEXT_STEPS_KEY = "next_steps"
# XCom key under which every step's task leaves its Metaflow task id.
TASK_ID_XCOM_KEY = "metaflow_task_id"

Split = tuple[int, int]


@dataclass(frozen=True)
class TaskRef:
    """The Airflow facts about one task instance that decide its Metaflow identity."""

    dag_id: str
    airflow_run_id: str
    map_index: int = -1
    try_number: int = 1
    params: Mapping[str, Any] = field(default_factory=dict)
    foreach_splits: Mapping[str, Sequence[Split]] = field(default_factory=dict)
    ran_parents: tuple[str, ...] | None = None
    # A foreach join whose body ends in several steps (a switch in the body): the Metaflow task
    # ids each of those steps left, so every split's input is the task that ran for it.
    body_end_task_ids: Mapping[str, frozenset[str]] | None = None


@dataclass(frozen=True)
class StepInvocation:
    """One run of one Metaflow step, as its ``step`` (and for start, ``init``) command needs it."""

    flow_name: str
    step: str
    run_id: str
    task_id: str
    input_paths: str
    retry_count: int
    split_index: int | None = None
    parameters_task_id: str | None = None
    parameter_env: Mapping[str, str] = field(default_factory=dict)

    @property
    def pathspec(self) -> str:
        return f"{self.flow_name}/{self.run_id}/{self.step}/{self.task_id}"


def splits_needed(manifest: FlowManifest, step: StepSpec) -> list[str]:
    """The foreach steps whose split lists this task must read to find its inputs."""
    needed = []
    if step.foreach and manifest.steps_by_name[step.foreach].foreach is not None:
        needed.append(step.foreach)  # a nested body: which (parent, split) is my map index?
    if step.joins_foreach:
        needed.append(step.joins_foreach)  # a join: which body tasks are mine?
    return needed


def meets_branches(step: StepSpec) -> bool:
    """A step with several parents: a join, or where a conditional's branches meet again. A
    conditional upstream may have skipped some of them; the step reads those that ran."""
    return len(step.parents) > 1


class MissingInputs(ValueError):
    """No upstream task ran for a step that must read one: running it would be a false run."""


def resolve_invocation(manifest: FlowManifest, step: StepSpec, ref: TaskRef) -> StepInvocation:
    """Deterministic ids (Metaflow's Airflow scheme) make every input path computable here,
    without asking upstream tasks: only split lists and taken branches come from XCom."""
    run_id = metaflow_run_id(ref.airflow_run_id, ref.dag_id)
    steps = manifest.steps_by_name
    my_index = ref.map_index if step.foreach else -1

    def path(step_name: str, map_index: int) -> str:
        task = metaflow_task_id(
            ref.airflow_run_id,
            step_name,
            ref.dag_id,
            map_index,
            flow_has_foreach=manifest.contains_foreach,
        )
        return f"{run_id}/{step_name}/{task}"

    own_path = path(step.name, my_index)
    own_task_id = own_path.rsplit("/", 1)[1]
    parent_index, split_index = _my_split(manifest, step, ref)
    params_task = None
    if step.name == START_STEP:
        params_task = parameters_task_id(own_task_id)
        inputs = [f"{run_id}/{PARAMETERS_STEP}/{params_task}"]
    elif step.joins_foreach:
        inputs = [
            path(_body_end(step, ref, k, path), k)
            for k, (parent, _) in enumerate(ref.foreach_splits[step.joins_foreach])
            if parent == my_index
        ]
    else:
        parents = step.parents if ref.ran_parents is None else ref.ran_parents
        if not parents:
            raise MissingInputs(
                f"step {step.name!r}: none of its parents ({', '.join(step.parents)}) ran"
            )
        inputs = []
        for parent in parents:
            if parent == step.foreach:
                inputs.append(path(parent, parent_index))
            elif step.foreach is not None and steps[parent].foreach == step.foreach:
                inputs.append(path(parent, my_index))
            else:
                inputs.append(path(parent, -1))
    return StepInvocation(
        flow_name=manifest.flow_name,
        step=step.name,
        run_id=run_id,
        task_id=own_task_id,
        input_paths=join_input_paths(inputs),
        retry_count=max(ref.try_number - 1, 0),
        split_index=split_index if step.foreach in step.parents else None,
        parameters_task_id=params_task,
        parameter_env=parameter_env(manifest.parameters, ref.params) if params_task else {},
    )


def _body_end(step: StepSpec, ref: TaskRef, split: int, path: Callable[[str, int], str]) -> str:
    """The last body step that ran for one split: the only one, or (a switch in the body) the
    one whose task for that split left its task id."""
    if len(step.parents) == 1:
        return step.parents[0]
    ran = ref.body_end_task_ids or {}
    for parent in step.parents:
        if path(parent, split).rsplit("/", 1)[1] in ran.get(parent, frozenset()):
            return parent
    raise MissingInputs(
        f"step {step.name!r}: no step of the foreach body ({', '.join(step.parents)}) ran "
        f"for split {split}"
    )


def _my_split(manifest: FlowManifest, step: StepSpec, ref: TaskRef) -> Split:
    """(map index of the foreach task that made my split, my split index) for a body step."""
    if step.foreach is None:
        return -1, -1
    if manifest.steps_by_name[step.foreach].foreach is None:
        return -1, ref.map_index
    parent, split = ref.foreach_splits[step.foreach][ref.map_index]
    return int(parent), int(split)


def parameter_env(
    parameters: tuple[ParameterSpec, ...], values: Mapping[str, Any]
) -> dict[str, str]:
    """Parameter values as the ``METAFLOW_INIT_*`` variables Metaflow's ``init`` reads.

    Values are data: they travel in the process environment, never through a shell."""
    env = {}
    for spec in parameters:
        value = values.get(spec.name, spec.default)
        if value is not None:
            env[spec.env_var] = encode_parameter(spec, value)
    return env


def event_parameter_values(
    manifest: FlowManifest,
    payloads: Mapping[str, Sequence[Mapping[str, Any]]],
    conf: Mapping[str, Any],
) -> dict[str, Any]:
    """Parameter values from the payloads of the events that triggered a run, as ``@trigger``
    maps them (``parameters={"param": "payload_field"}``).

    ``payloads`` are the triggering events' payloads by asset URI, oldest first: the newest one
    counts. A field the payload lacks leaves the parameter to its default (as on Argo), and a
    value given in the run's ``conf`` wins."""
    values: dict[str, Any] = {}
    for trigger in manifest.triggers:
        mapping = getattr(trigger, "parameters", None)
        events = payloads.get(trigger.asset_uri)
        if not mapping or not events:
            continue
        payload = events[-1]
        for parameter, payload_field in mapping.items():
            if payload_field in payload and parameter not in conf:
                values[parameter] = payload[payload_field]
    return values


def encode_parameter(spec: ParameterSpec, value: Any) -> str:
    """The text Metaflow's click type for ``spec.type`` parses back to ``value``."""
    if spec.type == "json":
        return json.dumps(value)
    if spec.type == "bool":
        return "true" if value is True or str(value).lower() == "true" else "false"
    if spec.type == "float":
        return repr(float(value))
    if spec.type == "int":
        return str(int(value))
    return str(value)


def split_indexes(result: Mapping[str, Any]) -> list[int]:
    """A foreach task's XCom: the split indexes its body is mapped over."""
    return list(range(int(result[SPLIT_COUNT_KEY])))


def flatten_splits(split_lists: Sequence[Sequence[int] | None]) -> list[list[int]]:
    """The tasks of a mapped foreach step each return their split indexes; their body is mapped
    over all of them at once, as ``[parent map index, split index]`` pairs."""
    return [[parent, split] for parent, splits in enumerate(split_lists) for split in splits or ()]
