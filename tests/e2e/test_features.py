"""Metaflow step decorators at run time on real Airflow with local compute: @retry, @catch,
@environment, @card, @timeout, and parameter corner cases (required, deploy-time, 'name')."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest
from airflow_harness import run_dag, run_state
from helpers import dagbag_parser, flow_path, publisher, run_locally, user_artifacts
from test_examples import run_on_airflow

from metaflow_airflow.airflow.dag.factory import TIMEOUT_BACKSTOP_SECONDS
from metaflow_airflow.runtime.ids import metaflow_run_id

pytestmark = pytest.mark.timeout(300)


@pytest.fixture(scope="module")
def store_url(tmp_path_factory) -> str:
    return f"file://{tmp_path_factory.mktemp('features-store')}"


@pytest.fixture(scope="module")
def parse(airflow_db):
    with dagbag_parser() as parse_store:
        yield parse_store


@pytest.fixture(scope="module")
def features_run(store_url, parse):
    """One run of tests/flows/features_flow.py, shared by the tests below."""
    publisher(store_url)("features_flow.py")
    run_id = run_on_airflow(parse, store_url, "FeaturesFlow", {"name": "alice", "size": 2})
    return user_artifacts("FeaturesFlow", run_id), run_id


def test_retry_runs_the_step_again_with_metaflows_retry_count(features_run):
    artifacts, _ = features_run
    assert artifacts["start"]["start_attempt"] == 1


def test_catch_lets_the_run_finish_with_the_exception_stored(features_run):
    artifacts, _ = features_run
    failure = artifacts["caught"]["failure"]
    assert "this step always fails" in str(failure)
    assert artifacts["caught"]["caught_attempt"] == 1  # the last of @retry(times=1)'s attempts


def test_environment_values_are_visible_in_the_step(features_run):
    artifacts, _ = features_run
    assert artifacts["end"]["greeting"] == "hello from @environment"


def test_parameter_name_required_and_deploy_time_values(features_run):
    artifacts, _ = features_run
    assert artifacts["end"]["summary"] == "alice 2 FeaturesFlow-published-by-tester"


def test_cards_are_produced_and_readable(features_run, store_url):
    """Read back with Metaflow's own ``card get``, in the run's production namespace."""
    from metaflow_airflow import ManifestStore

    _, run_id = features_run
    (task_id,) = _end_tasks(run_id)
    token = ManifestStore(store_url).read("FeaturesFlow").metaflow.env["METAFLOW_PRODUCTION_TOKEN"]
    shown = subprocess.run(
        [
            sys.executable,
            str(flow_path("features_flow.py")),
            "card",
            "get",
            f"{run_id}/end/{task_id}",
        ],
        env={**os.environ, "METAFLOW_PRODUCTION_TOKEN": token},
        capture_output=True,
        text=True,
        check=True,
    )
    assert "<html" in shown.stdout.lower()


def _end_tasks(run_id):
    from metaflow import Step, namespace

    namespace(None)
    return [t.id for t in Step(f"FeaturesFlow/{run_id}/end")]


def _running(pid: int) -> bool:
    """A process that exists and is not a zombie (a killed child whose new parent, the
    machine's init, has not reaped it yet, is dead)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_a_step_that_outlives_its_timeout_dies_with_its_children(parse, store_url, tmp_path):
    """A step that defeats Metaflow's own @timeout is stopped by Airflow's backstop
    (execution_timeout, TIMEOUT_BACKSTOP_SECONDS later), its whole process group with it."""
    pid_file = tmp_path / "sleepy.pid"
    os.environ["SLEEPY_PID_FILE"] = str(pid_file)
    try:
        publisher(store_url)("timeout_flow.py")
        bag = parse(store_url)
        started = time.monotonic()
        dag_run = run_dag(bag.get_dag("TimeoutFlow"))
        elapsed = time.monotonic() - started
    finally:
        del os.environ["SLEEPY_PID_FILE"]
    assert run_state(dag_run) == "failed"
    assert 4 + TIMEOUT_BACKSTOP_SECONDS["local"] <= elapsed < 90
    time.sleep(1)
    for pid in map(int, pid_file.read_text().split()):  # the step and its child
        assert not _running(pid)
    run_id = metaflow_run_id(dag_run.run_id, "TimeoutFlow")
    assert "end" not in user_artifacts("TimeoutFlow", run_id)


def test_timeout_with_catch_keeps_metaflows_timeout_exception(parse, store_url):
    """Metaflow's own @timeout fires inside the step, as under ``run``: @catch stores its
    TimeoutException and the next step sees the same artifacts as after a local run."""
    publisher(store_url)("timeout_catch_flow.py")
    dag_run = run_dag(parse(store_url).get_dag("TimeoutCatchFlow"))
    assert run_state(dag_run) == "success"
    on_airflow = user_artifacts(
        "TimeoutCatchFlow", metaflow_run_id(dag_run.run_id, "TimeoutCatchFlow")
    )
    local = user_artifacts("TimeoutCatchFlow", run_locally("timeout_catch_flow.py"))
    assert on_airflow["end"]["failure_type"] == local["end"]["failure_type"]
    assert on_airflow["end"]["failure_type"].endswith("TimeoutException")


def test_a_join_merges_the_identical_catches_of_a_foreach(parse, store_url):
    """Every task of a code package runs in one folder, as under ``run``: the tracebacks @catch
    keeps are identical in every split, and merge_artifacts takes them as one value."""
    publisher(store_url)("catch_in_foreach_flow.py")
    dag_run = run_dag(parse(store_url).get_dag("CatchInForeachFlow"))
    assert run_state(dag_run) == "success"
    run_id = metaflow_run_id(dag_run.run_id, "CatchInForeachFlow")
    on_airflow = user_artifacts("CatchInForeachFlow", run_id)
    local = user_artifacts("CatchInForeachFlow", run_locally("catch_in_foreach_flow.py"))
    assert (
        on_airflow["end"]["failure_type"] == local["end"]["failure_type"] == "builtins.ValueError"
    )
