"""Shared fixtures: publishing flows and parsing the loader with Airflow's DagBag."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from helpers import AIRFLOW_HOME, REPO, SESSION_DIR, flow_path


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    shutil.rmtree(SESSION_DIR, ignore_errors=True)


@pytest.fixture(scope="session")
def airflow_db() -> Path:
    """A migrated SQLite Airflow database, shared by the session."""
    airflow = Path(sys.executable).parent / "airflow"
    subprocess.run([str(airflow), "db", "migrate"], check=True, capture_output=True)
    return AIRFLOW_HOME


@pytest.fixture
def store_url(tmp_path: Path) -> str:
    """An empty local manifest store."""
    return f"file://{tmp_path / 'store'}"


@pytest.fixture
def publish(store_url: str):
    """Publish a flow file (from examples/ or tests/flows/) to ``store_url``."""
    from metaflow_airflow import PublishRequest, publish_flow

    def _publish(flow: str | Path, *, metaflow_options: tuple[str, ...] = (), **request: Any):
        request.setdefault("store", store_url)
        request.setdefault("compute", "local")
        return publish_flow(
            flow_path(flow), PublishRequest(**request), metaflow_options=metaflow_options
        )

    return _publish


@pytest.fixture
def dagbag(airflow_db: Path, monkeypatch: pytest.MonkeyPatch):
    """Parse ``dags_loader.py`` with Airflow's DagBag against a given store.

    The loader goes into the configured dags folder: ``dag.test()`` on Airflow 3 only runs
    DAGs it can serialize from the dags-folder bundle."""
    from metaflow_airflow.settings import get_settings

    def _parse(store: str, storage_options: Mapping[str, Any] | None = None):
        from airflow.dag_processing.dagbag import DagBag

        dags = AIRFLOW_HOME / "dags"
        shutil.copy(REPO / "dags_loader.py", dags / "dags_loader.py")
        monkeypatch.setenv("METAFLOW_AIRFLOW_STORE", store)
        if storage_options is not None:
            monkeypatch.setenv("METAFLOW_AIRFLOW_STORAGE_OPTIONS", json.dumps(storage_options))
        get_settings.cache_clear()
        return DagBag(dag_folder=str(dags))

    yield _parse
    get_settings.cache_clear()


@pytest.fixture
def clean_env() -> Iterator[None]:
    """Restore os.environ after a test that changes it directly."""
    saved = dict(os.environ)
    yield
    os.environ.clear()
    os.environ.update(saved)
