"""``python flow.py airflow-manifest create|trigger|status|list-runs|terminate|delete`` on the
production topology: the flow command in the habit of ``argo-workflows``, ``--<param> value``."""

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


def test_create_trigger_status_terminate_and_delete(stack, tmp_path):
    created = flow_command(stack, "create", "--compute", "local", "--tag", "cmd")
    assert created.returncode == 0, created.stderr
    assert "published as DAG FlowCommandFlow" in created.stdout + created.stderr

    refused = flow_command(stack, "trigger", "--count", "many")
    assert refused.returncode != 0 and "Invalid value for '--count'" in refused.stderr

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
    deadline = time.monotonic() + 90
    while flow_command(stack, "status", "--run-id", run_id).stdout.strip() != "failed":
        assert time.monotonic() < deadline, "the terminated run is not failed"
        time.sleep(2)

    unknown = flow_command(stack, "status", "--run-id", "airflow-000000000000")
    assert unknown.returncode != 0
    assert "no run 'airflow-000000000000' of DAG 'FlowCommandFlow' on Airflow" in unknown.stderr

    deleted = flow_command(stack, "delete")
    assert deleted.returncode == 0, deleted.stderr
    assert "DAG FlowCommandFlow deleted" in deleted.stdout + deleted.stderr
