"""Manifest → DAG: graph shape, mapped foreach bodies, typed params, determinism."""

from __future__ import annotations

import json

import pytest
from airflow_harness import serialize_dag
from manifests import ALL_PARAMETER_TYPES, FOREACH, FOREACH_STEPS, make_manifest

from metaflow_airflow.airflow.compat import MappedTaskGroup
from metaflow_airflow.airflow.dag.factory import build_dag
from metaflow_airflow.manifest.models import StepSpec

pytestmark = pytest.mark.usefixtures("airflow_db")


def test_each_step_is_a_task_wired_like_the_flow():
    dag = build_dag(FOREACH)
    assert sorted(dag.task_ids) == ["a", "b", "end", "join", "start"]
    assert dag.get_task("a").upstream_task_ids == {"start"}
    # Airflow also links every task of a mapped group to the task the group maps over.
    assert dag.get_task("b").upstream_task_ids == {"a", "start"}
    assert dag.get_task("join").upstream_task_ids == {"b"}
    assert dag.get_task("end").upstream_task_ids == {"join"}


def test_foreach_body_is_one_mapped_group_over_the_split_indexes():
    dag = build_dag(FOREACH)
    group = dag.get_task("a").task_group
    assert isinstance(group, MappedTaskGroup)
    assert group is dag.get_task("b").task_group
    assert dag.get_task("start").task_group is not group
    assert dag.get_task("join").task_group is not group


def test_parameters_become_typed_params():
    params = build_dag(FOREACH).params
    schemas = {name: params.get_param(name).schema for name in params}
    assert schemas["alpha"]["type"] == ["number", "null"]  # null: an emptied form field
    assert schemas["flag"]["type"] == ["boolean", "null"]
    assert params["flag"] is False
    assert schemas["n"] == {"type": ["integer", "null"]}
    assert params.get_param("n").description == "How many."
    assert "type" not in schemas["obj"] and params["obj"] == {"a": [1]}
    assert schemas["text"]["type"] == "string"
    assert not params.get_param("text").has_value  # required: a run must supply it


@pytest.mark.parametrize("kubernetes", [False, True], ids=["local", "kubernetes"])
def test_same_manifest_serializes_to_the_same_dag(kubernetes):
    manifest = make_manifest(FOREACH_STEPS, ALL_PARAMETER_TYPES, kubernetes=kubernetes)
    first = json.dumps(serialize_dag(build_dag(manifest)), sort_keys=True, default=str)
    second = json.dumps(serialize_dag(build_dag(manifest)), sort_keys=True, default=str)
    assert first == second


def test_dag_carries_the_flow_description():
    dag = build_dag(FOREACH)
    assert dag.description == "A test flow."
    assert "longer description" in dag.doc_md
    assert "metaflow" in dag.tags


def test_trigger_rules_never_let_a_run_succeed_without_end():
    """Where branches meet, a conditional may have skipped some parents: the step runs on those
    that ran. ``end`` is never skipped: with nothing to read it runs and fails."""
    manifest = make_manifest(
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
    rules = {
        t.task_id: getattr(t.trigger_rule, "value", t.trigger_rule)
        for t in build_dag(manifest).tasks
    }
    assert rules == {
        "start": "all_success",
        "a": "all_success",
        "b": "all_success",
        "c": "all_success",
        "d": "all_success",
        "join": "none_failed_min_one_success",
        "end": "none_failed",
    }


def _required_in_form(schema: dict) -> bool:
    """What Airflow's trigger form marks with a star (Airflow 3's FlexibleForm, and the
    ``"null" not in type`` rule of Airflow 2's form): a typed field that does not take null."""
    kind = schema.get("type")
    return bool(kind) and (not isinstance(kind, list) or "null" not in kind)


def test_only_params_without_default_are_required_in_the_form():
    params = build_dag(FOREACH).params
    required = {name for name in params if _required_in_form(params.get_param(name).schema)}
    assert required == {"text"}
    # An emptied field sends null: accepted, and the step gets the default.
    params.get_param("n").resolve(None)
    assert params.get_param("n").schema["type"] == ["integer", "null"]


def test_params_keep_the_manifest_order_through_serialization():
    reordered = tuple(reversed(ALL_PARAMETER_TYPES))
    dag = build_dag(make_manifest(FOREACH_STEPS, reordered))
    assert list(dag.params) == [p.name for p in reordered]
    serialized = serialize_dag(dag)["dag"]["params"]
    names = [entry[0] for entry in serialized] if isinstance(serialized, list) else list(serialized)
    assert names == [p.name for p in reordered]


def test_the_flow_docstring_is_dedented_in_the_dag_doc():
    docstring = "Train the model.\n\n    Reads the data, then fits.\n    - one\n    - two\n    "
    manifest = make_manifest(FOREACH_STEPS).model_copy(update={"description": docstring})
    doc = build_dag(manifest).doc_md
    assert "\nReads the data, then fits.\n- one\n- two\n" in doc
