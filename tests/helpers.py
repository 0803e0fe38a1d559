"""Test helpers and the session's environment: a private Airflow home (SQLite) and Metaflow
datastore. Airflow and Metaflow read their configuration when first imported, so this module
sets it on import; tests/conftest.py imports it before anything else."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from run_artifacts import user_artifacts  # noqa: F401 - the tests import it from here

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
        "METAFLOW_CARD_LOCALROOT": str(METAFLOW_SYSROOT / ".metaflow" / "mf.cards"),
        "METAFLOW_DEFAULT_DATASTORE": "local",
        "METAFLOW_DEFAULT_METADATA": "local",
        "METAFLOW_USER": "tester",
    }
)
os.environ.pop("METAFLOW_AIRFLOW_STORE", None)
(AIRFLOW_HOME / "dags").mkdir(parents=True, exist_ok=True)
METAFLOW_SYSROOT.mkdir(parents=True, exist_ok=True)


def env_with_tests_on_path() -> dict[str, str]:
    """This process's environment for a Python subprocess that imports the tests' helpers."""
    path = [str(REPO / "tests"), *filter(None, [os.environ.get("PYTHONPATH")])]
    return {**os.environ, "PYTHONPATH": os.pathsep.join(path)}


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


def publisher(store_url: str) -> Callable[..., Any]:
    """A function that publishes a flow file (tests/flows/ or examples/) to ``store_url``."""
    from metaflow_airflow import PublishRequest, publish_flow

    def _publish(flow: str | Path, *, metaflow_options: tuple[str, ...] = (), **request: Any):
        request.setdefault("store", store_url)
        request.setdefault("compute", "local")
        return publish_flow(
            flow_path(flow), PublishRequest(**request), metaflow_options=metaflow_options
        )

    return _publish


@contextmanager
def dagbag_parser() -> Iterator[Callable[..., Any]]:
    """Yields ``parse(store, storage_options=None)``: ``dags_loader.py`` read by a DagBag.

    The loader goes into the configured dags folder: ``dag.test()`` on Airflow 3 only runs
    DAGs it can serialize from the dags-folder bundle. The store settings are restored after."""
    from metaflow_airflow.settings import get_settings

    names = ("METAFLOW_AIRFLOW_STORE", "METAFLOW_AIRFLOW_STORAGE_OPTIONS")
    saved = {name: os.environ.get(name) for name in names}

    def parse(store: str, storage_options: Mapping[str, Any] | None = None):
        from airflow_harness import dag_bag_class

        dags = AIRFLOW_HOME / "dags"
        shutil.copy(REPO / "dags_loader.py", dags / "dags_loader.py")
        os.environ["METAFLOW_AIRFLOW_STORE"] = store
        os.environ["METAFLOW_AIRFLOW_STORAGE_OPTIONS"] = json.dumps(storage_options or {})
        get_settings.cache_clear()
        return dag_bag_class()(dag_folder=str(dags))

    try:
        yield parse
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        get_settings.cache_clear()
