"""What a task needs to know at run time: its Metaflow run id, task id, input paths, retry count
and split index, resolved from the Airflow task instance. Pure: no Airflow, no Metaflow.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .ids import (
    PARAMETERS_STEP,
    join_input_paths,
    metaflow_run_id,
    metaflow_task_id,
    parameters_task_id,
)
from .manifest import FlowManifest, ParameterSpec, StepSpec

START_STEP = "start"  # Metaflow's entry step; its type is that of its transition (e.g. foreach)
# The XCom a foreach step hands back: how many splits its body is mapped over.
SPLIT_COUNT_KEY = "foreach_num_splits"


@dataclass(frozen=True)
class TaskRef:
    """The Airflow facts about one task instance that decide its Metaflow identity."""

    dag_id: str
    airflow_run_id: str
    map_index: int = -1
    try_number: int = 1
    params: Mapping[str, Any] = field(default_factory=dict)
    split_counts: Mapping[str, int] = field(default_factory=dict)


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


def resolve_invocation(manifest: FlowManifest, step: StepSpec, ref: TaskRef) -> StepInvocation:
    """Deterministic ids (Metaflow's Airflow scheme) make every input path computable here,
    without asking upstream tasks: only a foreach join needs the split count."""
    run_id = metaflow_run_id(ref.airflow_run_id, ref.dag_id)
    my_index = ref.map_index if step.foreach else -1

    def task_id(step_name: str, map_index: int) -> str:
        return metaflow_task_id(
            ref.airflow_run_id,
            step_name,
            ref.dag_id,
            map_index,
            flow_has_foreach=manifest.contains_foreach,
        )

    own_task_id = task_id(step.name, my_index)
    params_task = None
    if step.name == START_STEP:
        params_task = parameters_task_id(own_task_id)
        inputs = [f"{run_id}/{PARAMETERS_STEP}/{params_task}"]
    elif step.joins_foreach:
        (last_body_step,) = step.parents
        count = ref.split_counts[step.joins_foreach]
        inputs = [f"{run_id}/{last_body_step}/{task_id(last_body_step, i)}" for i in range(count)]
    else:
        inputs = []
        for parent in step.parents:
            same_body = step.foreach is not None and manifest.steps_by_name[parent].foreach == step.foreach
            inputs.append(f"{run_id}/{parent}/{task_id(parent, my_index if same_body else -1)}")
    return StepInvocation(
        flow_name=manifest.flow_name,
        step=step.name,
        run_id=run_id,
        task_id=own_task_id,
        input_paths=join_input_paths(inputs),
        retry_count=max(ref.try_number - 1, 0),
        split_index=ref.map_index if step.foreach in step.parents else None,
        parameters_task_id=params_task,
        parameter_env=parameter_env(manifest.parameters, ref.params) if params_task else {},
    )


def parameter_env(parameters: tuple[ParameterSpec, ...], values: Mapping[str, Any]) -> dict[str, str]:
    """Parameter values as the ``METAFLOW_INIT_*`` variables Metaflow's ``init`` reads.

    Values are data: they travel in the process environment, never through a shell."""
    env = {}
    for spec in parameters:
        value = values.get(spec.name, spec.default)
        if value is not None:
            env[spec.env_var] = encode_parameter(spec, value)
    return env


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


def split_count_result(payload: Mapping[str, Any]) -> list[int]:
    """A foreach step's XCom: the split indexes its body is mapped over."""
    return list(range(int(payload[SPLIT_COUNT_KEY])))
