"""The production topology for the tests of this folder (and for anyone building on it, e.g. a
Metaflow Deployer): one :class:`~stack.Stack` per session, started when a test first asks for
it and stopped (every process group) when the session ends, also after a failure.

Fixtures: ``stack`` (the whole stack: ``stack.api`` is the REST API with a login,
``stack.api_url``, ``stack.api.user``/``stack.api.password``/``stack.api.token()``,
``stack.store_url``, ``stack.storage_options``, ``stack.home``, ``stack.metaflow_env()``,
``stack.publish(flow)``, ``stack.service_url`` and ``stack.metadata`` (the Metaflow metadata
service), ``stack.parse_as(component, loader_file)``); ``published`` publishes a flow file and
waits for its DAG;
``finished_run`` triggers a run through the API and waits for it.

The stack runs the Airflow of the interpreter that runs the tests (3.3 in ``.venv``, 2.11 in
``.tox/airflow211``); ``METAFLOW_AIRFLOW_TOPOLOGY_PYTHON`` names another one.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from stack import Stack, stop_on_signals


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    stop_on_signals()  # a SIGTERM to pytest still stops the stack's processes
    python = os.environ.get("METAFLOW_AIRFLOW_TOPOLOGY_PYTHON", sys.executable)
    topology = Stack(tmp_path_factory.mktemp("topology"), python=python)
    topology.start()
    try:
        yield topology
    finally:
        topology.stop()


@pytest.fixture(scope="session")
def published(stack: Stack) -> Callable[..., str]:
    """``published(flow_file, *publish_args)``: publish and wait until Airflow has the DAG;
    returns the DAG id."""

    def publish(flow: str | Path, *args: str) -> str:
        out = stack.publish(flow, *args)
        dag_id = out.split("dag_id:", 1)[1].split()[0]
        stack.api.wait_for_dag(dag_id)
        return dag_id

    return publish


@pytest.fixture(scope="session")
def finished_run(stack: Stack) -> Callable[..., tuple[str, str]]:
    """``finished_run(dag_id, conf=None, timeout=300)``: trigger through the REST API and wait;
    returns (run_id, final state)."""

    def run(dag_id: str, conf: dict[str, Any] | None = None, timeout: float = 300):
        run_id = stack.api.trigger(dag_id, conf)
        return run_id, stack.api.wait_for_run(dag_id, run_id, timeout)

    return run
