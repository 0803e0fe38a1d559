"""`metaflow-airflow trigger` and `runs` against a real Airflow's REST API (light_stack.py):
typed parameters, `--wait` to the end, a failed step's log, and one-line errors for every way
a trigger goes wrong (server down, wrong credentials, paused DAG, DAG not parsed, bad params)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import flow_path, publisher, user_artifacts
from light_stack import Stack, free_port

CLI = str(Path(sys.executable).parent / "metaflow-airflow")
pytestmark = pytest.mark.timeout(600)


def cli(stack: Stack, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: PLW1510 (the exit code is asserted)
        [CLI, *args],
        env={**os.environ, **stack.env, **env},
        capture_output=True,
        text=True,
        timeout=400,
    )


@pytest.fixture(scope="module")
def published(airflow_stack: Stack) -> str:
    publisher(airflow_stack.store_url)("deployer_flow.py", dag_id="TriggerCliFlow")
    return "TriggerCliFlow"


def test_a_paused_dag_is_refused_then_unpaused_and_run_to_the_end(airflow_stack, published):
    paused = cli(airflow_stack, "trigger", published, "--param", "count=3")
    assert paused.returncode == 1
    assert paused.stderr.strip().splitlines()[-1] == (
        f"error: DAG {published!r} is paused: its runs would wait forever; unpause it in "
        "Airflow's UI or trigger with --unpause"
    )

    done = cli(
        airflow_stack,
        "trigger",
        published,
        "--unpause",
        "--wait",
        "--json",
        "--param",
        "count=3",
        "--param",
        "alpha=1.5",
        "--param",
        "label=typed",
        "--param",
        'options={"k": 9}',
    )
    assert done.returncode == 0, done.stderr
    run = json.loads(done.stdout)
    assert run["state"] == "success"
    assert run["pathspec"] == f"DeployerFlow/{run['metaflow_run_id']}"
    assert run["airflow_url"].startswith(airflow_stack.api_url)
    assert "success: 3/3 tasks done" in done.stderr  # progress lines
    assert "running: start" in done.stderr or "running: work" in done.stderr
    artifacts = user_artifacts("DeployerFlow", run["metaflow_run_id"])
    assert artifacts["work"]["summary"] == "typed:4.5:9"
    assert artifacts["start"]["count"] == 3 and artifacts["start"]["alpha"] == 1.5

    listed = cli(airflow_stack, "runs", published, "--json")
    assert listed.returncode == 0, listed.stderr
    assert [r["metaflow_run_id"] for r in json.loads(listed.stdout)] == [run["metaflow_run_id"]]
    table = cli(airflow_stack, "runs", published)
    assert table.stdout.splitlines()[0].split() == [
        "STATE",
        "START",
        "DURATION",
        "METAFLOW",
        "RUN",
        "AIRFLOW",
        "RUN",
    ]
    assert run["metaflow_run_id"] in table.stdout and "success" in table.stdout


def test_wait_exits_1_with_the_failed_steps_last_log_lines(airflow_stack, published):
    failed = cli(airflow_stack, "trigger", published, "--unpause", "--wait", "--param", "fail=true")
    assert failed.returncode == 1
    assert "step work failed; the end of its log:" in failed.stderr
    assert "failing on request: fail=True" in failed.stderr
    assert failed.stderr.strip().splitlines()[-1].endswith(" of TriggerCliFlow failed")


def test_unknown_and_ill_typed_params_are_refused_before_anything_is_sent(airflow_stack, published):
    nowhere = f"http://127.0.0.1:{free_port()}"  # nothing listens: a request would say so
    unknown = cli(airflow_stack, "trigger", published, "--param", "alhpa=1", "--api-url", nowhere)
    assert unknown.returncode == 1
    assert unknown.stderr.startswith("error: unknown parameter 'alhpa' (the flow's parameters: ")
    typed = cli(airflow_stack, "trigger", published, "--param", "count=many", "--api-url", nowhere)
    assert typed.stderr == "error: parameter 'count' takes an integer, not 'many'\n"


def test_a_server_that_is_down_is_one_line(airflow_stack, published):
    nowhere = f"http://127.0.0.1:{free_port()}"
    down = cli(airflow_stack, "trigger", published, "--api-url", nowhere)
    assert down.returncode == 1
    assert down.stderr.startswith(f"error: cannot reach the Airflow API at {nowhere}: ")
    assert down.stderr.count("\n") == 1
    runs = cli(airflow_stack, "runs", published, "--api-url", nowhere)
    assert runs.stderr.startswith(f"error: cannot reach the Airflow API at {nowhere}: ")


def test_wrong_credentials_are_one_line(airflow_stack, published):
    wrong = cli(airflow_stack, "trigger", published, METAFLOW_AIRFLOW_API_PASSWORD="wrong")
    assert wrong.returncode == 1
    # Airflow 3 refuses the token request with 401; Airflow 2's basic auth answers 403
    assert re.search(
        f"login as {airflow_stack.username!r} refused \\(40[13]\\): check ", wrong.stderr
    ), wrong.stderr
    assert wrong.stderr.count("\n") == 1
    no_user = cli(
        airflow_stack,
        "runs",
        published,
        METAFLOW_AIRFLOW_API_USERNAME="",
        METAFLOW_AIRFLOW_API_PASSWORD="",
    )
    assert no_user.returncode == 1
    # Airflow 2 answers an anonymous call with 403
    assert re.search(r"not authenticated \(40[13]\): set ", no_user.stderr), no_user.stderr


def test_a_dag_airflow_has_not_parsed_is_waited_for_then_said(airflow_stack, tmp_path):
    elsewhere = f"file://{tmp_path / 'other-store'}"  # a store the loader does not read
    publisher(elsewhere)("deployer_flow.py", dag_id="NeverParsedFlow")
    missing = cli(
        airflow_stack, "trigger", "NeverParsedFlow", "--dag-wait", "2", "--store", elsewhere
    )
    assert missing.returncode == 1
    assert "waiting up to 2 s for Airflow to parse DAG NeverParsedFlow..." in missing.stderr
    assert missing.stderr.strip().splitlines()[-1] == (
        f"error: DAG 'NeverParsedFlow' is not on {airflow_stack.api_url} after 2 s: Airflow "
        "has not parsed it (is it published to the store the loader reads? "
        "`metaflow-airflow list`)"
    )
    assert flow_path("deployer_flow.py").exists()
