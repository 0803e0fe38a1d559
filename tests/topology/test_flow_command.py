"""``python flow.py airflow-manifest create|trigger|status|list-runs|terminate|delete`` on the
production topology: the flow command in the habit of ``argo-workflows``, ``--<param> value``
typed, a run followed to its end and its artifacts read, a long one terminated."""

from __future__ import annotations

import sys
import time

import pytest
from deploying import run
from helpers import flow_path

pytestmark = [pytest.mark.topology, pytest.mark.timeout(600)]


def flow_command(stack, *args: str):
    argv = [sys.executable, str(flow_path("deployer_flow.py")), "airflow-manifest",
            "--name", "FlowCommandFlow", *args]  # fmt: skip
    return run(stack, argv)


def until_status(stack, run_id: str, state: str, timeout: float = 240) -> None:
    """Until ``airflow-manifest status`` says ``state`` (the run's other end states fail)."""
    deadline = time.monotonic() + timeout
    while (now := flow_command(stack, "status", "--run-id", run_id).stdout.strip()) != state:
        assert now in ("queued", "running"), f"run {run_id} is {now}, not {state}"
        assert time.monotonic() < deadline, f"run {run_id} still {now} after {timeout} s"
        time.sleep(2)


def test_create_trigger_wait_read_terminate_and_delete(stack, tmp_path):
    created = flow_command(stack, "create", "--compute", "local", "--tag", "cmd")
    assert created.returncode == 0, created.stderr
    assert "published as DAG FlowCommandFlow" in created.stdout + created.stderr

    refused = flow_command(stack, "trigger", "--count", "many")
    assert refused.returncode != 0 and "Invalid value for '--count'" in refused.stderr

    # typed parameters, to the end, and the artifacts through Metaflow's Client API
    typed_id_file = tmp_path / "typed-run-id"
    typed = flow_command(stack, "trigger", "--unpause", "--count", "3", "--alpha", "1.5",
                         "--label", "cmd", "--options", '{"k": 7}',
                         "--run-id-file", str(typed_id_file))  # fmt: skip
    assert typed.returncode == 0, typed.stderr
    typed_id = typed_id_file.read_text()
    until_status(stack, typed_id, "success")
    artifacts = stack.artifacts("DeployerFlow", typed_id)
    assert artifacts["work"]["summary"] == "cmd:4.5:7"
    assert (artifacts["start"]["count"], artifacts["start"]["alpha"]) == (3, 1.5)

    run_id_file = tmp_path / "run-id"
    triggered = flow_command(stack, "trigger", "--unpause", "--sleep_seconds", "900",
                             "--label", "cmd", "--run-id-file", str(run_id_file))  # fmt: skip
    assert triggered.returncode == 0, triggered.stderr
    run_id = run_id_file.read_text()
    assert run_id.startswith("airflow-") and run_id in triggered.stdout + triggered.stderr

    status = flow_command(stack, "status", "--run-id", run_id)
    assert status.stdout.strip() in ("queued", "running"), status.stderr
    assert run_id in flow_command(stack, "list-runs").stdout

    terminated = flow_command(stack, "terminate", "--run-id", run_id)
    assert terminated.returncode == 0, terminated.stderr
    until_status(stack, run_id, "failed", timeout=90)

    unknown = flow_command(stack, "status", "--run-id", "airflow-000000000000")
    assert unknown.returncode != 0
    assert "no run 'airflow-000000000000' of DAG 'FlowCommandFlow' on Airflow" in unknown.stderr

    deleted = flow_command(stack, "delete")
    assert deleted.returncode == 0, deleted.stderr
    assert "DAG FlowCommandFlow deleted" in deleted.stdout + deleted.stderr
