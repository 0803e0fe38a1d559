"""Input paths, split indexes and parameter encoding, resolved from Airflow task facts."""

from __future__ import annotations

import json

import pytest
from manifests import FOREACH_STEPS, make_manifest

from metaflow_airflow.manifest.models import ParameterSpec, StepSpec
from metaflow_airflow.runtime.ids import metaflow_run_id, metaflow_task_id
from metaflow_airflow.runtime.invocation import (
    MissingInputs,
    TaskRef,
    encode_parameter,
    flatten_splits,
    resolve_invocation,
)

RUN = "scheduled__2026-01-01T00:00:00+00:00"


FOREACH = make_manifest(FOREACH_STEPS, (ParameterSpec(name="alpha", type="float", default=0.5),))


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
    ref = TaskRef(
        dag_id="F", airflow_run_id=RUN, foreach_splits={"start": [(-1, 0), (-1, 1), (-1, 2)]}
    )
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


NESTED = make_manifest(
    [
        StepSpec(name="start", type="foreach", next=("middle",)),
        StepSpec(
            name="middle", type="foreach", parents=("start",), next=("leaf",), foreach="start"
        ),
        StepSpec(
            name="leaf", type="linear", parents=("middle",), next=("inner_join",), foreach="middle"
        ),
        StepSpec(
            name="inner_join",
            type="join",
            parents=("leaf",),
            next=("outer_join",),
            foreach="start",
            joins_foreach="middle",
        ),
        StepSpec(
            name="outer_join",
            type="join",
            parents=("inner_join",),
            next=("end",),
            joins_foreach="start",
        ),
        StepSpec(name="end", type="end", parents=("outer_join",)),
    ]
)
# Inner widths [1, 2, 3]: flattened (middle's map index, split index) pairs.
INNER = [(0, 0), (1, 0), (1, 1), (2, 0), (2, 1), (2, 2)]


def test_nested_body_step_finds_its_parent_task_and_split_index():
    ref = TaskRef(dag_id="F", airflow_run_id=RUN, map_index=4, foreach_splits={"middle": INNER})
    inv = resolve_invocation(NESTED, NESTED.steps_by_name["leaf"], ref)
    assert inv.task_id == tid("leaf", 4)
    assert inv.input_paths.endswith(f"/middle/{tid('middle', 2)}")
    assert inv.split_index == 1


def test_inner_join_collects_only_its_outer_splits():
    ref = TaskRef(dag_id="F", airflow_run_id=RUN, map_index=2, foreach_splits={"middle": INNER})
    inv = resolve_invocation(NESTED, NESTED.steps_by_name["inner_join"], ref)
    run = metaflow_run_id(RUN, "F")
    assert inv.input_paths == f"{run}/:" + ",".join(f"leaf/{tid('leaf', k)}" for k in (3, 4, 5))
    assert inv.task_id == tid("inner_join", 2)


def test_after_a_conditional_only_the_branch_taken_is_an_input():
    manifest = make_manifest(
        [
            StepSpec(name="start", type="split-switch", next=("a", "b")),
            StepSpec(name="a", type="linear", parents=("start",), next=("merge",)),
            StepSpec(name="b", type="linear", parents=("start",), next=("merge",)),
            StepSpec(name="merge", type="linear", parents=("a", "b"), next=("end",)),
            StepSpec(name="end", type="end", parents=("merge",)),
        ]
    )
    ref = TaskRef(dag_id="F", airflow_run_id=RUN, ran_parents=("b",))
    inv = resolve_invocation(manifest, manifest.steps_by_name["merge"], ref)
    assert inv.input_paths.split("/")[-2] == "b"
    assert "," not in inv.input_paths


SWITCH_IN_BRANCH = make_manifest(
    [
        StepSpec(name="start", type="split", next=("a", "b")),
        StepSpec(name="a", type="split-switch", parents=("start",), next=("c", "d")),
        StepSpec(name="b", type="linear", parents=("start",), next=("join",)),
        StepSpec(name="c", type="linear", parents=("a",), next=("join",)),
        StepSpec(name="d", type="linear", parents=("a",), next=("join",)),
        StepSpec(name="join", type="join", parents=("b", "c", "d"), next=("end",)),
        StepSpec(name="end", type="end", parents=("join",)),
    ]
)


def test_a_join_after_a_conditional_reads_the_branches_that_ran():
    ref = TaskRef(dag_id="F", airflow_run_id=RUN, ran_parents=("b", "d"))
    inv = resolve_invocation(SWITCH_IN_BRANCH, SWITCH_IN_BRANCH.steps_by_name["join"], ref)
    assert [p.split("/")[-2] for p in inv.input_paths.split(":")[1].split(",")] == ["b", "d"]


def test_a_step_none_of_whose_parents_ran_refuses_to_run():
    ref = TaskRef(dag_id="F", airflow_run_id=RUN, ran_parents=())
    with pytest.raises(MissingInputs, match=r"step 'join': none of its parents \(b, c, d\) ran"):
        resolve_invocation(SWITCH_IN_BRANCH, SWITCH_IN_BRANCH.steps_by_name["join"], ref)


SWITCH_IN_FOREACH = make_manifest(
    [
        StepSpec(name="start", type="foreach", next=("decide",)),
        StepSpec(
            name="decide",
            type="split-switch",
            parents=("start",),
            next=("even", "odd"),
            foreach="start",
        ),
        StepSpec(name="even", type="linear", parents=("decide",), next=("join",), foreach="start"),
        StepSpec(name="odd", type="linear", parents=("decide",), next=("join",), foreach="start"),
        StepSpec(
            name="join", type="join", parents=("even", "odd"), next=("end",), joins_foreach="start"
        ),
        StepSpec(name="end", type="end", parents=("join",)),
    ]
)


def test_a_foreach_join_reads_for_each_split_the_body_step_that_ran_for_it():
    splits = [(-1, k) for k in range(3)]
    ran = {"even": frozenset({tid("even", 1)}), "odd": frozenset({tid("odd", 0), tid("odd", 2)})}
    ref = TaskRef(
        dag_id="F", airflow_run_id=RUN, foreach_splits={"start": splits}, body_end_task_ids=ran
    )
    inv = resolve_invocation(SWITCH_IN_FOREACH, SWITCH_IN_FOREACH.steps_by_name["join"], ref)
    run = metaflow_run_id(RUN, "F")
    expected = ",".join([f"odd/{tid('odd', 0)}", f"even/{tid('even', 1)}", f"odd/{tid('odd', 2)}"])
    assert inv.input_paths == f"{run}/:{expected}"


def test_a_foreach_join_refuses_a_split_no_body_step_ran_for():
    ran = {"even": frozenset({tid("even", 0)}), "odd": frozenset()}
    ref = TaskRef(
        dag_id="F",
        airflow_run_id=RUN,
        foreach_splits={"start": [(-1, 0), (-1, 1)]},
        body_end_task_ids=ran,
    )
    with pytest.raises(MissingInputs, match=r"\(even, odd\) ran for split 1"):
        resolve_invocation(SWITCH_IN_FOREACH, SWITCH_IN_FOREACH.steps_by_name["join"], ref)


def test_flatten_splits_keeps_map_index_order():
    assert flatten_splits([[0], [0, 1], None, [0]]) == [[0, 0], [1, 0], [1, 1], [3, 0]]
