"""Faults on the production topology.

- A Celery worker killed with SIGKILL (and the step process it ran: the machine is gone) while
  it runs a step: Airflow notices the missing heartbeats, retries the task per the step's
  ``@retry``, the run succeeds, Metaflow records the attempt (retry count 1), and the next step
  reads the retry's artifacts, not the killed attempt's.
- The scheduler killed with SIGKILL and started again while a step runs: the run completes,
  the step's first attempt counts (no retry).
- A run marked failed while a step runs (what ``terminate`` does): Airflow stops the task and
  the step's processes stop with it (they run in a session of their own), none left running.
- PostgreSQL restarted while a step runs: the components that exit on the lost database are
  started again (as a service manager would), and the run completes; the test records which
  exited (``stack.logs``/postgres-restart.json)."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import pytest

from metaflow_airflow.runtime.ids import metaflow_run_id

FLOW = """
import os
import time

from metaflow import FlowSpec, current, retry, step

GATE = {gate!r}


class WorkerKillFlow(FlowSpec):
    @step
    def start(self):
        self.next(self.work)

    @retry(times=1, minutes_between_retries=0)
    @step
    def work(self):
        self.attempt = current.retry_count
        if current.retry_count == 0:  # the first attempt waits to be killed
            deadline = time.time() + 600
            while not os.path.exists(GATE) and time.time() < deadline:
                time.sleep(0.5)
        self.next(self.end)

    @step
    def end(self):
        self.seen = self.attempt


if __name__ == "__main__":
    WorkerKillFlow()
"""


def _processes_with(text: str) -> list[int]:
    """The ids of the processes whose command line contains ``text``."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if text in (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode():
                    found.append(int(entry.name))
            except OSError:
                continue
    return found


@pytest.mark.topology
@pytest.mark.timeout(600)
def test_a_worker_killed_mid_step_is_retried_and_the_run_succeeds(stack, published, tmp_path):
    flow = tmp_path / "worker_kill_flow.py"
    flow.write_text(FLOW.format(gate=str(tmp_path / "never")))
    dag_id = published(flow)
    run_id = stack.api.trigger(dag_id)
    worker, _ = _worker_running(stack, _work_step(dag_id, run_id))
    leader = stack.processes[worker].pid
    # The machine dies: the worker and every process under it (the step has a session of its own)
    doomed = [pid for pid in _processes_with("") if _in_group_of([pid], leader)]
    for pid in doomed:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    stack.processes[worker].wait()
    stack.start_component(worker)  # the machine comes back

    assert stack.api.wait_for_run(dag_id, run_id, timeout=400) == "success", stack.logs
    tries = {t["task_id"]: t["try_number"] for t in stack.api.task_instances(dag_id, run_id)}
    assert tries["work"] == 2
    artifacts = stack.run_artifacts("WorkerKillFlow", dag_id, run_id)
    assert artifacts["work"]["attempt"] == 1
    assert artifacts["end"]["seen"] == 1


@pytest.mark.topology
@pytest.mark.topology_full
@pytest.mark.timeout(600)
def test_a_scheduler_restarted_mid_run_lets_the_run_complete(stack, published, tmp_path):
    flow = tmp_path / "worker_kill_flow.py"
    gate = tmp_path / "gate"
    flow.write_text(FLOW.format(gate=str(gate)))
    dag_id = published(flow, "--name", "SchedulerRestartFlow")
    run_id = stack.api.trigger(dag_id)
    _worker_running(stack, _work_step(dag_id, run_id))
    scheduler = stack.processes["scheduler"]
    os.killpg(scheduler.pid, signal.SIGKILL)
    scheduler.wait()
    stack.start_component("scheduler")
    gate.touch()

    assert stack.api.wait_for_run(dag_id, run_id, timeout=400) == "success", stack.logs
    tries = {t["task_id"]: t["try_number"] for t in stack.api.task_instances(dag_id, run_id)}
    assert tries["work"] == 1
    assert stack.run_artifacts("WorkerKillFlow", dag_id, run_id)["end"]["seen"] == 0


@pytest.mark.topology
@pytest.mark.topology_full
@pytest.mark.timeout(900)
def test_postgres_restarted_mid_run_loses_nothing(stack, published, tmp_path):
    flow = tmp_path / "worker_kill_flow.py"
    gate = tmp_path / "gate"
    flow.write_text(FLOW.format(gate=str(gate)))
    dag_id = published(flow, "--name", "PostgresRestartFlow")
    run_id = stack.api.trigger(dag_id)
    _worker_running(stack, _work_step(dag_id, run_id))
    stack.postgres.stop()
    time.sleep(10)
    stack.postgres.start()
    time.sleep(20)  # what Airflow's components do on their own
    exited = sorted(name for name, p in stack.processes.items() if p.poll() is not None)
    for name in exited:
        stack.start_component(name)
    (stack.logs / "postgres-restart.json").write_text(json.dumps({"exited": exited}))
    gate.touch()

    state = stack.api.wait_for_run(dag_id, run_id, timeout=600)
    tries = {t["task_id"]: t["try_number"] for t in stack.api.task_instances(dag_id, run_id)}
    assert state == "success", (exited, tries, stack.logs)
    assert stack.run_artifacts("WorkerKillFlow", dag_id, run_id)["end"]["seen"] == tries["work"] - 1


@pytest.mark.topology
@pytest.mark.timeout(600)
def test_a_run_marked_failed_stops_its_running_step_processes(stack, published, tmp_path):
    flow = tmp_path / "worker_kill_flow.py"
    flow.write_text(FLOW.format(gate=str(tmp_path / "never")))
    dag_id = published(flow, "--name", "TerminatedStepFlow")
    run_id = stack.api.trigger(dag_id)
    step = _work_step(dag_id, run_id)
    _, processes = _worker_running(stack, step)
    assert processes

    stack.api.call("PATCH", f"/dags/{dag_id}/dagRuns/{run_id}", {"state": "failed"})
    deadline = time.monotonic() + 120
    while _running(_processes_with(step)):
        assert time.monotonic() < deadline, f"the terminated run's step still runs: {step!r}"
        time.sleep(1)
    assert stack.api.run(dag_id, run_id)["state"] == "failed"


def _running(pids: list[int]) -> list[int]:
    """Those of ``pids`` that still run (a killed process may stay a zombie for a while)."""
    alive = []
    for pid in pids:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state != "Z":
            alive.append(pid)
    return alive


def _work_step(dag_id: str, run_id: str) -> str:
    """The command line of this run's ``work`` step (other runs of the session may be running
    theirs)."""
    return f" step work --run-id {metaflow_run_id(run_id, dag_id)} "


def _worker_running(stack, text: str, timeout: float = 240) -> tuple[str, list[int]]:
    """The Celery worker that runs the step processes whose command line contains ``text``,
    and those processes, once the step has run for two seconds."""
    deadline = time.monotonic() + timeout
    while True:
        steps = _processes_with(text)
        workers = [
            name
            for name, process in stack.processes.items()
            if name.startswith("worker") and _in_group_of(steps, process.pid)
        ]
        if len(workers) == 1:
            time.sleep(2)  # its attempt has begun writing to the datastore
            return workers[0], _processes_with(text)
        assert time.monotonic() < deadline, f"no worker runs {text!r}: {steps}"
        time.sleep(0.5)


def _in_group_of(steps: list[int], leader: int) -> bool:
    """Whether one of ``steps`` descends from the worker process ``leader``."""
    for pid in steps:
        while pid > 1:
            try:
                stat = Path(f"/proc/{pid}/stat").read_text()
            except OSError:
                break
            if pid == leader:
                return True
            pid = int(stat.rsplit(")", 1)[1].split()[1])  # the parent's id
    return False
