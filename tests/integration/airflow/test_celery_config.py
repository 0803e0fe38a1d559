"""The Celery settings that start each task warm (``airflow/celery_config.py``): a real Celery
app imports their modules the way a worker does before it forks its tasks, and with them
imported, a task's parse of ``dags_loader.py`` (local and Kubernetes compute DAGs) imports
nothing more of metaflow-airflow or the Kubernetes provider — so every task inherits what it
would import. Each check runs in a fresh interpreter, as a worker starts."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import REPO
from store_helpers import make_manifest

from metaflow_airflow import ManifestStore
from metaflow_airflow.manifest.models import KubernetesCompute

pytestmark = pytest.mark.timeout(180)
pytest.importorskip("airflow.providers.celery", reason="the Celery provider is not installed")

WORKER = """
import json, sys
from celery import Celery
from metaflow_airflow.airflow.celery_config import CELERY_CONFIG, WARM_IMPORTS
app = Celery("worker", config_source=CELERY_CONFIG)
before = [m for m in WARM_IMPORTS if m in sys.modules]
app.loader.import_default_modules()  # what a Celery worker does at start, before its pool forks
after = [m for m in WARM_IMPORTS if m in sys.modules]
print(json.dumps({"before": before, "after": after, "all": list(WARM_IMPORTS)}))
"""

TASK_PARSE = """
import importlib, json, runpy, sys
from metaflow_airflow.airflow.celery_config import WARM_IMPORTS
for module in WARM_IMPORTS:
    importlib.import_module(module)
warm = set(sys.modules)
dags = runpy.run_path(sys.argv[1])
ours = ("metaflow_airflow", "airflow.providers.cncf")
print(json.dumps({
    "dags": sorted(k for k, v in dags.items() if type(v).__name__ == "DAG"),
    "imported": sorted(m for m in set(sys.modules) - warm if m.startswith(ours)),
}))
"""


def _python(code: str, *args: str, env: dict[str, str] | None = None) -> dict:
    done = subprocess.run(
        [sys.executable, "-c", code, *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=150,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_a_celery_worker_imports_the_warm_modules_before_it_forks():
    seen = _python(WORKER)
    assert seen["before"] == []
    assert seen["after"] == seen["all"]


def test_with_them_a_tasks_parse_of_the_loader_file_imports_nothing_more(tmp_path: Path):
    store = ManifestStore(f"file://{tmp_path / 'store'}")
    store.write(make_manifest("OnLocal"))
    store.write(make_manifest("OnKubernetes").model_copy(update={"compute": KubernetesCompute()}))
    env = {
        **os.environ,
        "METAFLOW_AIRFLOW_STORE": store.url,
        "METAFLOW_AIRFLOW_CACHE_DIR": str(tmp_path / "cache"),
    }
    seen = _python(TASK_PARSE, str(REPO / "dags_loader.py"), env=env)
    assert seen["dags"] == ["OnKubernetes", "OnLocal"]
    assert seen["imported"] == []
