"""Graph shapes Metaflow's own integration refuses, run on real Airflow with local compute and
compared with a plain ``python flow.py run``: nested foreach (uneven and empty inner widths),
a foreach inside a branch, a branch inside a foreach body, and conditional steps."""

from __future__ import annotations

import subprocess

import pytest
from helpers import run_locally, user_artifacts
from metaflow import Run
from test_examples import run_on_airflow

from metaflow_airflow.runtime.ids import metaflow_run_id

pytestmark = pytest.mark.timeout(400)


def test_nested_foreach_with_uneven_inner_widths(publish, dagbag, store_url):
    publish("nested_foreach_flow.py")
    airflow_run = run_on_airflow(dagbag, store_url, "NestedForeachFlow", {"widths": [1, 2, 3]})
    local_run = run_locally("nested_foreach_flow.py", "--widths", "[1, 2, 3]")
    airflow = user_artifacts("NestedForeachFlow", airflow_run)
    assert airflow == user_artifacts("NestedForeachFlow", local_run)
    assert airflow["end"]["labels"] == [["0.0"], ["1.0", "1.1"], ["2.0", "2.1", "2.2"]]


def test_nested_foreach_with_an_empty_inner_list_fails_like_metaflow(publish, dagbag, store_url):
    """Metaflow refuses a foreach over zero splits; on Airflow the same task fails."""
    publish("nested_foreach_flow.py")
    bag = dagbag(store_url)
    dag_run = bag.get_dag("NestedForeachFlow").test(run_conf={"widths": [2, 0, 1]})
    assert str(getattr(dag_run.state, "value", dag_run.state)) == "failed"
    with pytest.raises(subprocess.CalledProcessError):
        run_locally("nested_foreach_flow.py", "--widths", "[2, 0, 1]")
    run_id = metaflow_run_id(dag_run.run_id, "NestedForeachFlow")
    artifacts = user_artifacts("NestedForeachFlow", run_id)
    assert "outer_join" not in artifacts and "end" not in artifacts


def test_foreach_inside_a_branch_and_a_branch_inside_a_foreach(publish, dagbag, store_url):
    publish("shapes_flow.py")
    airflow_run = run_on_airflow(dagbag, store_url, "ShapesFlow", {})
    local_run = run_locally("shapes_flow.py")
    airflow = user_artifacts("ShapesFlow", airflow_run)
    assert airflow == user_artifacts("ShapesFlow", local_run)
    assert airflow["end"]["pairs"] == [[1, 2], [4, 4], [6, 9]]


@pytest.mark.parametrize("route", ["small", "large"])
def test_conditional_takes_one_side_and_the_merge_still_runs(publish, dagbag, store_url, route):
    publish("switch_flow.py")
    airflow_run = run_on_airflow(dagbag, store_url, "SwitchFlow", {"route": route})
    local_run = run_locally("switch_flow.py", "--route", route)
    airflow = user_artifacts("SwitchFlow", airflow_run)
    assert airflow == user_artifacts("SwitchFlow", local_run)
    assert airflow["end"]["final"] == (11 if route == "small" else 1001)
    skipped = {"small": "large", "large": "small"}[route]
    assert skipped not in airflow


def test_switch_inside_a_foreach_body_joins_what_each_split_took(publish, dagbag, store_url):
    publish("switch_in_foreach_flow.py")
    airflow_run = run_on_airflow(dagbag, store_url, "SwitchInForeachFlow", {})
    local_run = run_locally("switch_in_foreach_flow.py")
    airflow = user_artifacts("SwitchInForeachFlow", airflow_run)
    local = user_artifacts("SwitchInForeachFlow", local_run)
    # docs/features.md: Metaflow's local runtime orders this join's inputs by branch, in an
    # order that changes from run to run; on Airflow they come in split order.
    for step in ("join", "end"):
        assert sorted(airflow[step].pop("results")) == sorted(local[step].pop("results"))
    assert airflow == local
    assert user_artifacts("SwitchInForeachFlow", airflow_run)["end"]["results"] == [-1, 20, -3, 40]


@pytest.mark.parametrize("route", ["c", "d"])
def test_switch_inside_a_static_branch_reaches_the_join_and_end(publish, dagbag, store_url, route):
    """The side of the branch the switch did not take is skipped; the join still meets the
    two that ran, and the run reaches end (a skipped end would be a false success)."""
    publish("switch_in_branch_flow.py")
    airflow_run = run_on_airflow(dagbag, store_url, "SwitchInBranchFlow", {"route": route})
    local_run = run_locally("switch_in_branch_flow.py", "--route", route)
    airflow = user_artifacts("SwitchInBranchFlow", airflow_run)
    assert airflow == user_artifacts("SwitchInBranchFlow", local_run)
    assert airflow["end"]["seen"] == sorted(["b", route])
    assert Run(f"SwitchInBranchFlow/{airflow_run}").successful  # user_artifacts: namespace(None)
