"""A run stays on the version it started with (DESIGN: "A run is one version"): a flow is
published, a run starts, and while its ``start`` step waits a new version is published that
changes every step's code. Every task of the run must still run the first version's code
package (each step records the version its code says); the next run is all the new version.

Airflow itself moves a running run onto the newest DAG when its DAG bundle is not versioned (the
dags folder, on Airflow 2 and 3): the workers here build every task from the new version, so
without the pin (``compute/run_version.py``) ``middle`` and ``end`` record v2."""

from __future__ import annotations

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


class PinnedVersionFlow(FlowSpec):
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
    PinnedVersionFlow()
'''


def _write(folder: Path, version: str, middle: str, gate: Path) -> Path:
    path = folder / "pinned_version_flow.py"
    path.write_text(FLOW.format(version=version, middle=middle, gate=str(gate)))
    return path


def _dag_version(stack, dag_id: str) -> str:
    """The manifest version the DAG Airflow serves was built from (its docs show the hash)."""
    doc = stack.api.call("GET", f"/dags/{dag_id}/details")["doc_md"]
    return doc.split("(manifest content hash)", 1)[0].rsplit("`", 2)[-2]


def test_a_run_keeps_its_version_while_a_new_one_is_published(stack, published, tmp_path):
    gate = tmp_path / "gate"
    dag_id = published(_write(tmp_path, "v1", "middle", gate))
    run_id = stack.api.trigger(dag_id)
    _wait_until_running(stack, dag_id, run_id, "start")

    v1 = _dag_version(stack, dag_id)
    stack.publish(_write(tmp_path, "v2", "middle", gate))
    deadline = time.monotonic() + 120  # until Airflow serves the new version's DAG
    while _dag_version(stack, dag_id) == v1:
        assert time.monotonic() < deadline, "the DAG processor never picked up v2"
        time.sleep(1)
    gate.touch()

    assert stack.api.wait_for_run(dag_id, run_id) == "success", stack.logs
    artifacts = stack.run_artifacts("PinnedVersionFlow", dag_id, run_id)
    assert artifacts == {
        "start": {"start_version": "v1"},
        "middle": {"start_version": "v1", "middle_version": "v1"},
        "end": {"start_version": "v1", "middle_version": "v1", "end_version": "v1"},
    }

    later = stack.api.trigger(dag_id)  # the gate is open: no wait
    assert stack.api.wait_for_run(dag_id, later) == "success"
    artifacts = stack.run_artifacts("PinnedVersionFlow", dag_id, later)
    assert artifacts["end"] == {
        "start_version": "v2",
        "middle_version": "v2",
        "end_version": "v2",
    }


def _wait_until_running(stack, dag_id: str, run_id: str, task_id: str) -> None:
    deadline = time.monotonic() + 180
    while True:
        states = {t["task_id"]: t["state"] for t in stack.api.task_instances(dag_id, run_id)}
        if states.get(task_id) == "running":
            return
        assert time.monotonic() < deadline, f"{task_id} never started: {states}"
        time.sleep(0.5)
