"""``python flow.py airflow-manifest create|trigger|status|list-runs|terminate|delete`` on a
real Airflow: the flow command in the habit of ``argo-workflows``, with ``--<param> value``."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest
from helpers import flow_path
from light_stack import Stack

from metaflow_airflow.store.manifest_store import ManifestStore

pytestmark = pytest.mark.timeout(600)


def flow_command(stack: Stack, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: PLW1510 (the exit code is asserted)
        [
            sys.executable,
            str(flow_path("deployer_flow.py")),
            "airflow-manifest",
            "--name",
            "FlowCommandFlow",
            *args,
        ],
        env={**os.environ, **stack.env},
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_create_trigger_status_terminate_and_delete(airflow_stack: Stack, tmp_path):
    created = flow_command(airflow_stack, "create", "--compute", "local", "--tag", "cmd")
    assert created.returncode == 0, created.stderr
    assert "published as DAG FlowCommandFlow" in created.stdout + created.stderr
    assert ManifestStore(airflow_stack.store_url).read("FlowCommandFlow").tags == ("cmd",)

    refused = flow_command(airflow_stack, "trigger", "--count", "many")
    assert refused.returncode != 0 and "Invalid value for '--count'" in refused.stderr

    run_id_file = tmp_path / "run-id"
    triggered = flow_command(
        airflow_stack,
        "trigger",
        "--unpause",
        "--sleep_seconds",
        "900",
        "--label",
        "cmd",
        "--run-id-file",
        str(run_id_file),
    )
    assert triggered.returncode == 0, triggered.stderr
    run_id = run_id_file.read_text()
    assert run_id.startswith("airflow-") and run_id in triggered.stdout + triggered.stderr

    status = flow_command(airflow_stack, "status", "--run-id", run_id)
    assert status.stdout.strip() in ("queued", "running"), status.stderr
    listed = flow_command(airflow_stack, "list-runs")
    assert run_id in listed.stdout, listed.stderr

    terminated = flow_command(airflow_stack, "terminate", "--run-id", run_id)
    assert terminated.returncode == 0, terminated.stderr
    deadline = time.monotonic() + 60
    while flow_command(airflow_stack, "status", "--run-id", run_id).stdout.strip() != "failed":
        assert time.monotonic() < deadline, "the terminated run is not failed"
        time.sleep(1)

    unknown = flow_command(airflow_stack, "status", "--run-id", "airflow-000000000000")
    assert unknown.returncode != 0
    assert "no run 'airflow-000000000000' of DAG 'FlowCommandFlow' on Airflow" in unknown.stderr

    deleted = flow_command(airflow_stack, "delete")
    assert deleted.returncode == 0, deleted.stderr
    assert "FlowCommandFlow" not in ManifestStore(airflow_stack.store_url).list()
