"""A run stays on the version it started with (DESIGN: "A run is one version"): a flow is
published, a run starts, and while its ``start`` step waits a new version is published that
changes every step's code. Every task of the run must still run the first version's code
package (each step records the version its code says); the next run is all the new version.

Two guards keep it. Airflow itself moves a running run onto the newest DAG when the run has no
bundle version (the dags folder, on Airflow 2 and 3), and each worker builds a task from the
manifest current when the task starts: without the pin (``compute/run_version.py``) ``middle``
and ``end`` record v2. And when the new version renames a step, only a versioned bundle
(``airflow/loader/bundle.py``, Airflow 3) keeps the run on its DAG: with the dags folder Airflow
drops the old step from the run and schedules the new one, and the run fails (documented for
Airflow 2, which has no bundles; never a mix of versions).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

pytestmark = [pytest.mark.topology, pytest.mark.timeout(600)]

FLOW = '''
import os
import time

from metaflow import FlowSpec, step

VERSION = "{version}"
GATE = {gate!r}


class {name}(FlowSpec):
    """Each step records the version of the code it runs; start waits for the test's gate."""

    @step
    def start(self):
        self.start_version = VERSION
        deadline = time.time() + 240
        while os.path.exists(GATE) is False and time.time() < deadline:
            time.sleep(0.5)
        self.next(self.{middle})

    @step
    def {middle}(self):
        self.middle_version = VERSION
        self.next(self.end)

    @step
    def end(self):
        self.end_version = VERSION


if __name__ == "__main__":
    {name}()
'''


def _write(folder: Path, name: str, version: str, middle: str, gate: Path) -> Path:
    path = folder / f"{name.lower()}.py"
    path.write_text(FLOW.format(name=name, version=version, middle=middle, gate=str(gate)))
    return path


def _dag_version(stack, dag_id: str) -> str:
    """The manifest version the DAG Airflow serves was built from (its docs show the hash)."""
    doc = stack.api.call("GET", f"/dags/{dag_id}/details")["doc_md"]
    return doc.split("(manifest content hash)", 1)[0].rsplit("`", 2)[-2]


def _publish_during_a_run(stack, published, folder: Path, name: str, middle: str):
    """v1 published and a run started; v2 (its middle step named ``middle``) published and
    served by Airflow while the run's ``start`` waits; then ``start`` goes on. Returns the DAG
    id and the run id."""
    gate = folder / "gate"
    dag_id = published(_write(folder, name, "v1", "middle", gate))
    run_id = stack.api.trigger(dag_id)
    _wait_until_running(stack, dag_id, run_id, "start")

    v1 = _dag_version(stack, dag_id)
    stack.publish(_write(folder, name, "v2", middle, gate))
    deadline = time.monotonic() + 120  # until Airflow serves the new version's DAG
    while _dag_version(stack, dag_id) == v1:
        assert time.monotonic() < deadline, "the DAG processor never picked up v2"
        time.sleep(1)
    gate.touch()
    return dag_id, run_id


V1_RUN = {
    "start": {"start_version": "v1"},
    "middle": {"start_version": "v1", "middle_version": "v1"},
    "end": {"start_version": "v1", "middle_version": "v1", "end_version": "v1"},
}


def test_a_run_keeps_its_version_while_a_new_one_is_published(stack, published, tmp_path):
    name = "PinnedVersionFlow"
    dag_id, run_id = _publish_during_a_run(stack, published, tmp_path, name, "middle")

    assert stack.api.wait_for_run(dag_id, run_id) == "success", stack.logs
    assert stack.run_artifacts(name, dag_id, run_id) == V1_RUN

    later = stack.api.trigger(dag_id)  # the gate is open: no wait
    assert stack.api.wait_for_run(dag_id, later) == "success"
    artifacts = stack.run_artifacts(name, dag_id, later)
    assert artifacts["end"] == {
        "start_version": "v2",
        "middle_version": "v2",
        "end_version": "v2",
    }


def test_a_step_renamed_meanwhile_does_not_fail_the_run(stack, published, tmp_path):
    name = "RenamedStepFlow"
    dag_id, run_id = _publish_during_a_run(stack, published, tmp_path, name, "renamed")

    state = stack.api.wait_for_run(dag_id, run_id)
    artifacts = stack.run_artifacts(name, dag_id, run_id)
    if stack.major >= 3:  # the bundle's version keeps the run on v1's DAG
        assert state == "success", stack.logs
        assert artifacts == V1_RUN
    else:  # Airflow 2 moves the run onto v2's DAG: it fails, and runs no code of v2
        assert state == "failed"
        assert "v2" not in json.dumps(artifacts), artifacts

    later = stack.api.trigger(dag_id)
    assert stack.api.wait_for_run(dag_id, later) == "success"
    assert stack.run_artifacts(name, dag_id, later)["end"] == {
        "start_version": "v2",
        "middle_version": "v2",
        "end_version": "v2",
    }
    tasks = {t["task_id"] for t in stack.api.task_instances(dag_id, later)}
    assert tasks == {"start", "renamed", "end"}


def _wait_until_running(stack, dag_id: str, run_id: str, task_id: str) -> None:
    deadline = time.monotonic() + 180
    while True:
        states = {t["task_id"]: t["state"] for t in stack.api.task_instances(dag_id, run_id)}
        if states.get(task_id) == "running":
            return
        assert time.monotonic() < deadline, f"{task_id} never started: {states}"
        time.sleep(0.5)
