"""Debugging a production failure locally (docs/debugging.md): a run on Airflow fails in its
middle step; ``python flow.py resume --origin-run-id airflow-...`` on a laptop reuses the steps
that finished on Airflow and runs the rest with the fixed code."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from airflow_harness import run_dag, run_state
from helpers import SESSION_DIR, flow_path

from metaflow_airflow import ManifestStore
from metaflow_airflow.runtime.ids import metaflow_run_id

pytestmark = pytest.mark.timeout(300)


def test_resume_a_failed_airflow_run_locally(publish, dagbag, store_url, tmp_path):
    from metaflow import Run, namespace

    publish("resume_flow.py")
    os.environ.pop("RESUME_FLOW_FIXED", None)
    dag_run = run_dag(dagbag(store_url).get_dag("ResumeFlow"))
    assert run_state(dag_run) == "failed"
    origin = metaflow_run_id(dag_run.run_id, "ResumeFlow")

    # What the operator needs: the run id (the task's XCom, or this hash), and the datastore
    # and metadata the flow was published with. Airflow runs live in the production namespace.
    token = ManifestStore(store_url).read("ResumeFlow").metaflow.env["METAFLOW_PRODUCTION_TOKEN"]
    namespace(f"production:{token}")
    failed = Run(f"ResumeFlow/{origin}")
    assert failed["start"].task.successful and not failed.successful

    run_id_file = tmp_path / "resumed-run-id"
    resumed = subprocess.run(
        [
            sys.executable,
            str(flow_path("resume_flow.py")),
            "resume",
            "--origin-run-id",
            origin,
            "--run-id-file",
            str(run_id_file),
        ],
        env={**os.environ, "RESUME_FLOW_FIXED": "1"},
        cwd=SESSION_DIR,
        capture_output=True,
        text=True,
        check=False,
    )
    assert resumed.returncode == 0, resumed.stderr[-2000:]

    namespace(None)
    run = Run(f"ResumeFlow/{run_id_file.read_text().strip()}")
    assert run.successful
    start = run["start"].task
    assert start.metadata_dict.get("origin-run-id") == origin  # cloned, not run again
    assert start.metadata_dict.get("origin-task-id") == failed["start"].task.id
    assert "origin-task-id" not in run["transform"].task.metadata_dict  # ran with the fix
    assert run["end"].task["report"].data == "3 rows, first 1"
