"""`metaflow-airflow trigger` and `runs` against the production topology's REST API: typed
parameters, `--wait` to the end, a failed step's log, and one-line errors for every way a
trigger goes wrong (server down, wrong credentials, paused DAG, DAG not parsed, bad params)."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest
from deploying import run
from helpers import flow_path, publisher
from servers import free_port

from metaflow_airflow.rest.client import AirflowApi, ApiCredentials

pytestmark = [pytest.mark.topology, pytest.mark.timeout(600)]
CLI = str(Path(sys.executable).parent / "metaflow-airflow")
DAG = "TriggerCliFlow"


@pytest.fixture(scope="module")
def published(stack) -> str:
    stack.publish(flow_path("deployer_flow.py"), "--name", DAG)
    stack.api.wait_for_dag(DAG)
    return DAG


def test_a_paused_dag_is_refused_then_unpaused_and_run_to_the_end(stack, published):
    with AirflowApi(ApiCredentials(stack.api_url, stack.api.user, stack.api.password)) as api:
        api.set_paused(DAG, True)
    paused = run(stack, [CLI, "trigger", DAG, "--param", "count=3"])
    assert paused.returncode == 1
    assert paused.stderr.strip().splitlines()[-1] == (
        f"error: DAG {DAG!r} is paused: its runs would wait forever; unpause it in "
        "Airflow's UI or trigger with --unpause"
    )

    done = run(stack, [CLI, "trigger", DAG, "--unpause", "--wait", "--json",
                       "--param", "count=3", "--param", "alpha=1.5", "--param", "label=typed",
                       "--param", 'options={"k": 9}'],
               METAFLOW_AIRFLOW_UI_URL="https://mf-ui.example/")  # fmt: skip
    assert done.returncode == 0, done.stderr
    info = json.loads(done.stdout)
    assert info["state"] == "success"
    assert info["pathspec"] == f"DeployerFlow/{info['metaflow_run_id']}"
    assert info["airflow_url"].startswith(stack.api_url)
    assert info["metaflow_ui_url"] == f"https://mf-ui.example/{info['pathspec']}"
    assert "success: 3/3 tasks done" in done.stderr  # the progress lines
    artifacts = stack.run_artifacts("DeployerFlow", DAG, info["run_id"])
    assert artifacts["work"]["summary"] == "typed:4.5:9"
    assert (artifacts["start"]["count"], artifacts["start"]["alpha"]) == (3, 1.5)

    listed = run(stack, [CLI, "runs", DAG, "--json"])
    assert listed.returncode == 0, listed.stderr
    assert info["metaflow_run_id"] in [r["metaflow_run_id"] for r in json.loads(listed.stdout)]
    table = run(stack, [CLI, "runs", DAG]).stdout.splitlines()
    assert table[0].split() == ["STATE", "START", "DURATION", "METAFLOW", "RUN", "AIRFLOW", "RUN"]
    assert any(info["metaflow_run_id"] in row and "success" in row for row in table[1:])


def test_wait_exits_1_with_the_failed_steps_last_log_lines(stack, published):
    failed = run(stack, [CLI, "trigger", DAG, "--unpause", "--wait", "--param", "fail=true"])
    assert failed.returncode == 1
    assert "step work failed; the end of its log:" in failed.stderr
    assert "failing on request: fail=True" in failed.stderr
    assert failed.stderr.strip().splitlines()[-1].endswith(f" of {DAG} failed")


def test_unknown_and_ill_typed_params_are_refused_before_anything_is_sent(stack, published):
    nowhere = f"http://127.0.0.1:{free_port()}"  # nothing listens: a request would say so
    unknown = run(stack, [CLI, "trigger", DAG, "--param", "alhpa=1", "--api-url", nowhere])
    assert unknown.returncode == 1
    assert unknown.stderr.startswith("error: unknown parameter 'alhpa' (the flow's parameters: ")
    typed = run(stack, [CLI, "trigger", DAG, "--param", "count=many", "--api-url", nowhere])
    assert typed.stderr == "error: parameter 'count' takes an integer, not 'many'\n"


def test_a_server_that_is_down_is_one_line(stack, published):
    nowhere = f"http://127.0.0.1:{free_port()}"
    for command in ("trigger", "runs"):
        down = run(stack, [CLI, command, DAG, "--api-url", nowhere])
        assert down.returncode == 1
        assert down.stderr.startswith(f"error: cannot reach the Airflow API at {nowhere}: ")
        assert down.stderr.count("\n") == 1


def test_wrong_or_missing_credentials_are_one_line(stack, published):
    wrong = run(stack, [CLI, "trigger", DAG], METAFLOW_AIRFLOW_API_PASSWORD="wrong")
    assert wrong.returncode == 1
    # Airflow 3 refuses the token request with 401; Airflow 2's basic auth answers 403
    user = stack.api.user
    assert re.search(f"login as {user!r} refused \\(40[13]\\): check ", wrong.stderr), wrong.stderr
    assert wrong.stderr.count("\n") == 1
    anonymous = run(stack, [CLI, "runs", DAG], METAFLOW_AIRFLOW_API_USERNAME="",
                    METAFLOW_AIRFLOW_API_PASSWORD="")  # fmt: skip
    assert anonymous.returncode == 1
    assert re.search(r"not authenticated \(40[13]\): set ", anonymous.stderr), anonymous.stderr


def test_a_dag_airflow_has_not_parsed_is_waited_for_then_said(stack, tmp_path):
    elsewhere = f"file://{tmp_path / 'other-store'}"  # a store the loader does not read
    publisher(elsewhere)("deployer_flow.py", dag_id="NeverParsedFlow")
    missing = run(stack, [CLI, "trigger", "NeverParsedFlow", "--dag-wait", "2",
                          "--store", elsewhere])  # fmt: skip
    assert missing.returncode == 1
    assert "waiting up to 2 s for Airflow to parse DAG NeverParsedFlow..." in missing.stderr
    assert missing.stderr.strip().splitlines()[-1] == (
        f"error: DAG 'NeverParsedFlow' is not on {stack.api_url} after 2 s: Airflow has not "
        "parsed it (is it published to the store the loader reads? `metaflow-airflow list`)"
    )
