"""The manifest store stopped while runs are in progress (issue 16, item 3c).

The flow's manifests live on an S3 server of their own (a second ``moto_server``, read by a
second loader file in ``dags/``), apart from the Metaflow datastore's S3, which stays up. While
a run's step waits, that server is stopped (connections refused). Then:

- the running step (``start``) finishes, and the run's next step starts: the worker's parse
  (with the parsing context) finds the store down and builds the DAG from its last-known-good
  cache;
- a run triggered during the outage starts and completes the same way;
- the DAG processor keeps the DAG (no DAG is removed while the store does not list);
- each parse during the outage logs the loader's warning exactly once: every task log of a task
  that started during the outage, and the DAG processor's log of the loader file.

A worker that has never parsed the DAG has no cache to fall back on: the test fills both
workers' caches with one parse each, as an earlier task on each machine would have.
"""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from moto_process import MotoServer

pytestmark = [pytest.mark.topology, pytest.mark.timeout(600)]

FLOW = """
import os
import time

from metaflow import FlowSpec, current, step

STARTED = {started!r}
GATE = {gate!r}


class StoreOutageFlow(FlowSpec):
    @step
    def start(self):
        open(os.path.join(STARTED, current.run_id), "w").close()
        deadline = time.time() + 300
        while not os.path.exists(GATE) and time.time() < deadline:
            time.sleep(0.5)
        self.next(self.end)

    @step
    def end(self):
        self.done = True


if __name__ == "__main__":
    StoreOutageFlow()
"""

LOADER = """from metaflow_airflow import load_dags

load_dags(globals(), store={store!r}, storage_options={options!r})
"""

# The loader's warning when the store does not list (loader/policy.py: store_unavailable).
WARNING = "is unavailable"
PARSE_BEGINS = "Filling up the DagBag from"
# Task states of a task that could not start or run.
STUCK = {"up_for_reschedule", "up_for_retry", "failed", "upstream_failed"}


@pytest.fixture
def outage_store(stack, tmp_path):
    """A manifest store on an S3 server of its own, and a loader file in ``dags/`` that serves
    it; the file is removed (its DAGs deactivated) and the server stopped afterwards."""
    server = MotoServer(tmp_path / "store-moto")
    url = f"{server.bucket()}/flows"
    # botocore tries a refused connection 5 times with backoff (about 10 s, the loader's
    # default store_timeout_seconds, measured here); one retry keeps each outage parse short.
    options = {**server.storage_options, "config_kwargs": {"retries": {"max_attempts": 1}}}
    loader = stack.home / "dags" / "outage_loader.py"
    loader.write_text(LOADER.format(store=url, options=options))
    try:
        yield server, url, options, loader
    finally:
        loader.unlink(missing_ok=True)
        server.stop()


def test_runs_complete_while_the_manifest_store_is_down(stack, outage_store, tmp_path):
    server, url, options, loader = outage_store
    started, gate = tmp_path / "started", tmp_path / "gate"
    started.mkdir()
    flow = tmp_path / "store_outage_flow.py"
    flow.write_text(FLOW.format(started=str(started), gate=str(gate)))
    out = stack.publish(flow, "--store", url, "--storage-options", json.dumps(options))
    dag_id = out.split("dag_id:", 1)[1].split()[0]
    stack.api.wait_for_dag(dag_id)
    first = stack.api.trigger(dag_id)
    with ThreadPoolExecutor(2) as pool:  # each worker machine has parsed the DAG before
        list(pool.map(lambda worker: stack.parse_as(worker, loader), ["worker1", "worker2"]))
    _wait_for(lambda: any(started.iterdir()), "the first run's start step to run")
    processor_log = _processor_log(stack)
    workers = [stack.logs / f"{worker}.log" for worker in ("worker1", "worker2")]
    server.stop()
    seen = processor_log.stat().st_size  # the parses logged from here on began without a store
    seen_by_workers = [log.stat().st_size for log in workers]
    second = stack.api.trigger(dag_id)
    gate.touch()

    _wait_for(lambda: _finished(stack, dag_id, [first, second]), "both runs", timeout=300)
    if stack.major >= 3:  # a task's parse logs to the task's log
        for run_id, task_ids in ((first, ["end"]), (second, ["start", "end"])):
            for task_id in task_ids:
                log = _task_log(stack, dag_id, run_id, task_id)
                assert log.count(WARNING) == 1, (run_id, task_id, log[-3000:])
    else:  # `airflow tasks run` parses before it logs to the task's log: the worker's log
        text = "".join(_tail(log, offset) for log, offset in zip(workers, seen_by_workers))
        parses = text.count(f"{PARSE_BEGINS} {loader}")
        assert parses >= 3 and text.count(WARNING) == parses, text[-3000:]
    _wait_for(lambda: _parses_after(processor_log, seen), "a DAG processor parse of the outage")
    for parse in _parses_after(processor_log, seen):
        assert parse.count(WARNING) == 1, parse[-3000:]
    assert _active(stack.api.dag(dag_id)), stack.api.dag(dag_id)


def _wait_for(condition, what: str, timeout: float = 240) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.5)


def _finished(stack, dag_id: str, runs: list[str]) -> bool:
    """Whether every run succeeded; fails at once when a task of theirs did not start (a
    worker that cannot build the DAG: Airflow 3 reschedules the task, over and over) or
    failed."""
    states = {}
    for run_id in runs:
        for ti in stack.api.task_instances(dag_id, run_id):
            assert ti["state"] not in STUCK, (run_id, ti["task_id"], ti["state"], stack.logs)
        states[run_id] = stack.api.run(dag_id, run_id)["state"]
    assert "failed" not in states.values(), (states, stack.logs)
    return set(states.values()) == {"success"}


def _active(dag: dict | None) -> bool:
    """Whether Airflow still serves the DAG (Airflow 3: not stale; Airflow 2: active)."""
    return dag is not None and not dag.get("is_stale", False) and dag.get("is_active", True)


def _task_log(stack, dag_id: str, run_id: str, task_id: str) -> str:
    """The log of a task (every try), as the worker wrote it."""
    folder = stack.home / "logs" / f"dag_id={dag_id}" / f"run_id={run_id}" / f"task_id={task_id}"
    return "\n".join(path.read_text(errors="replace") for path in sorted(folder.glob("attempt=*")))


def _processor_log(stack) -> Path:
    """The log file of the parses of the outage loader file, by the DAG processor (Airflow 2:
    the scheduler's processor), once it has parsed the file."""
    folder = stack.home / "logs" / ("dag_processor" if stack.major >= 3 else "scheduler")
    _wait_for(lambda: list(folder.rglob("outage_loader.py.log")), "the loader file's parse log")
    return max(folder.rglob("outage_loader.py.log"), key=lambda path: path.stat().st_mtime)


def _tail(log: Path, offset: int) -> str:
    """The log's text past byte ``offset``."""
    with open(log, "rb") as stream:
        stream.seek(offset)
        return stream.read().decode(errors="replace")


def _parses_after(log: Path, offset: int) -> list[str]:
    """The text of each parse that began past byte ``offset`` of the log and has ended (another
    parse began after it): Airflow logs ``Filling up the DagBag from <file>`` as a parse begins."""
    return _tail(log, offset).split(PARSE_BEGINS)[1:-1]
