"""Step logs are kept the Metaflow way on local compute (metaflow.mflog, as in a pod): what
every task printed reads back through the Client API exactly as after ``python flow.py run``."""

from __future__ import annotations

import pytest
from helpers import run_locally
from test_examples import run_on_airflow

pytestmark = pytest.mark.timeout(300)


def _logs(run_id: str) -> dict[str, tuple[str, str]]:
    from metaflow import Run, namespace

    namespace(None)
    return {
        f"{task.parent.id}/{task.index}": (task.stdout, task.stderr)
        for step in Run(f"LogsFlow/{run_id}")
        for task in step
    }


def test_step_logs_read_back_as_after_a_local_run(publish, dagbag, store_url):
    publish("logs_flow.py")
    on_airflow = _logs(run_on_airflow(dagbag, store_url, "LogsFlow", {}))
    assert on_airflow == _logs(run_locally("logs_flow.py"))
    assert on_airflow["start/None"] == ("start says hello\n", "start warns\n")
    assert on_airflow["body/1"] == ("body 2 out\n", "body 2 err\n")
