"""Input paths, split indexes and parameter encoding, resolved from Airflow task facts."""

from __future__ import annotations

import json
import pytest
from manifests import FOREACH_STEPS, make_manifest

from metaflow_airflow.ids import metaflow_run_id, metaflow_task_id
from metaflow_airflow.manifest import ParameterSpec
from metaflow_airflow.runtime import TaskRef, encode_parameter, resolve_invocation

RUN = "scheduled__2026-01-01T00:00:00+00:00"


FOREACH = make_manifest(
    FOREACH_STEPS, (ParameterSpec(name="alpha", type="float", default=0.5),)
)


def tid(step: str, index: int) -> str:
    return metaflow_task_id(RUN, step, "F", index, flow_has_foreach=True)


def test_start_reads_parameters_task_and_gets_parameter_env():
    ref = TaskRef(dag_id="F", airflow_run_id=RUN, params={"alpha": 2})
    inv = resolve_invocation(FOREACH, FOREACH.steps_by_name["start"], ref)
    run = metaflow_run_id(RUN, "F")
    assert inv.run_id == run
    assert inv.parameters_task_id == f"{tid('start', -1)}-params"
    assert inv.input_paths == f"{run}/_parameters/{tid('start', -1)}-params"
    assert inv.parameter_env == {"METAFLOW_INIT_ALPHA": "2.0"}
    assert inv.split_index is None


def test_first_body_step_takes_split_index_and_unmapped_parent():
    ref = TaskRef(dag_id="F", airflow_run_id=RUN, map_index=2, try_number=3)
    inv = resolve_invocation(FOREACH, FOREACH.steps_by_name["a"], ref)
    assert inv.split_index == 2
    assert inv.task_id == tid("a", 2)
    assert inv.input_paths.endswith(f"/start/{tid('start', -1)}")
    assert inv.retry_count == 2
    assert inv.parameter_env == {}


def test_second_body_step_follows_the_same_split():
    ref = TaskRef(dag_id="F", airflow_run_id=RUN, map_index=1)
    inv = resolve_invocation(FOREACH, FOREACH.steps_by_name["b"], ref)
    assert inv.split_index is None
    assert inv.input_paths.endswith(f"/a/{tid('a', 1)}")


def test_join_collects_every_split_of_the_last_body_step():
    ref = TaskRef(dag_id="F", airflow_run_id=RUN, split_counts={"start": 3})
    inv = resolve_invocation(FOREACH, FOREACH.steps_by_name["join"], ref)
    run = metaflow_run_id(RUN, "F")
    assert inv.input_paths == f"{run}/:" + ",".join(f"b/{tid('b', i)}" for i in range(3))


@pytest.mark.parametrize(
    ("kind", "value", "text"),
    [
        ("str", "$(rm -rf /) `x` '\"", "$(rm -rf /) `x` '\""),
        ("int", 5, "5"),
        ("float", 1, "1.0"),
        ("bool", True, "true"),
        ("bool", False, "false"),
        ("json", {"a": [1, None]}, json.dumps({"a": [1, None]})),
    ],
)
def test_parameter_encoding(kind, value, text):
    assert encode_parameter(ParameterSpec(name="p", type=kind), value) == text
