"""Shared fixtures: a private Airflow home (SQLite), a private Metaflow datastore, publishing
and parsing helpers. Airflow and Metaflow read their configuration when first imported, so the
session's environment is set here, before any test module imports either of them."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parent.parent
EXAMPLES = REPO / "examples"
FLOWS = Path(__file__).resolve().parent / "flows"
SESSION_DIR = Path(tempfile.mkdtemp(prefix="metaflow-airflow-tests-"))
AIRFLOW_HOME = SESSION_DIR / "airflow"
METAFLOW_SYSROOT = SESSION_DIR / "metaflow"

os.environ.update(
    {
        "AIRFLOW_HOME": str(AIRFLOW_HOME),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_FOLDER": str(AIRFLOW_HOME / "dags"),
        "AIRFLOW__LOGGING__LOGGING_LEVEL": "WARNING",
        "METAFLOW_DATASTORE_SYSROOT_LOCAL": str(METAFLOW_SYSROOT),
        "METAFLOW_DEFAULT_DATASTORE": "local",
        "METAFLOW_DEFAULT_METADATA": "local",
        "METAFLOW_USER": "tester",
    }
)
os.environ.pop("METAFLOW_AIRFLOW_STORE", None)
(AIRFLOW_HOME / "dags").mkdir(parents=True, exist_ok=True)
METAFLOW_SYSROOT.mkdir(parents=True, exist_ok=True)


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
            import json

            monkeypatch.setenv("METAFLOW_AIRFLOW_STORAGE_OPTIONS", json.dumps(storage_options))
        get_settings.cache_clear()
        return DagBag(dag_folder=str(dags))

    yield _parse
    get_settings.cache_clear()


def flow_path(flow: str | Path) -> Path:
    """A flow by file name: tests/flows/ first, then examples/."""
    path = Path(flow)
    if path.is_absolute():
        return path
    for folder in (FLOWS, EXAMPLES):
        if (folder / path).exists():
            return folder / path
    raise FileNotFoundError(flow)


def run_locally(flow: str | Path, *args: str) -> str:
    """``python flow.py run`` in a subprocess; returns the Metaflow run id."""
    run_id_file = SESSION_DIR / f"run-id-{os.getpid()}-{Path(flow).stem}"
    subprocess.run(
        [sys.executable, str(flow_path(flow)), "run", "--run-id-file", str(run_id_file), *args],
        check=True,
        capture_output=True,
        cwd=SESSION_DIR,
    )
    return run_id_file.read_text().strip()


def user_artifacts(flow_name: str, run_id: str) -> dict[str, dict[str, Any]]:
    """Every user artifact of every task of a run, keyed by step and foreach index."""
    from metaflow import Run, namespace

    namespace(None)
    result: dict[str, dict[str, Any]] = {}
    for step in Run(f"{flow_name}/{run_id}"):
        for task in step:
            key = f"{step.id}[{task.index}]" if task.index is not None else step.id
            result[key] = {
                a.id: a.data for a in task.artifacts if not a.id.startswith("_") and a.id != "name"
            }
    return result


@pytest.fixture
def clean_env() -> Iterator[None]:
    """Restore os.environ after a test that changes it directly."""
    saved = dict(os.environ)
    yield
    os.environ.clear()
    os.environ.update(saved)
