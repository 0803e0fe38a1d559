"""The two worlds meet only in the manifest: the publish side and the shared modules never
import Airflow, the Airflow side never imports Metaflow; and the public API is what we document.

Imports are checked in fresh interpreters, since this test process may have imported anything.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import types
from pathlib import Path

import pytest
from manifests import FOREACH_STEPS, make_manifest

import metaflow_airflow
from metaflow_airflow import ManifestStore, errors

SHARED_MODULES = [
    "metaflow_airflow",
    "metaflow_airflow.manifest.models",
    "metaflow_airflow.store.manifest_store",
    "metaflow_airflow.publish.publisher",
    "metaflow_airflow.airflow.provider",  # Airflow loads it for every CLI command
    "metaflow_airflow.mwaa.bundle",
    "metaflow_airflow.cli",
]
AIRFLOW_SIDE_MODULES = [
    "metaflow_airflow.airflow.loader.parse",
    "metaflow_airflow.airflow.dag.factory",
    "metaflow_airflow.airflow.compute.local",
    "metaflow_airflow.airflow.compute.kubernetes",
    "metaflow_airflow.airflow.ui",
    "metaflow_airflow.airflow.plugin",
    "metaflow_airflow.airflow.dag.tree",
]
# The package docstring's public API.
DOCUMENTED_API = {
    "load_dags",
    "publish_flow",
    "PublishRequest",
    "PublishResult",
    "FlowManifest",
    "ManifestStore",
    "MetaflowAirflowError",
    "CompileError",
    "PublishError",
    "StoreError",
    "ManifestError",
    "__version__",
}


def imported_modules(modules: list[str], env: dict[str, str]) -> set[str]:
    """Import ``modules`` in a new interpreter; the modules it then holds."""
    script = (
        "import importlib, json, sys\n"
        f"for name in {modules!r}:\n"
        "    importlib.import_module(name)\n"
        "print(json.dumps(sorted(sys.modules)))\n"
    )
    completed = subprocess.run(
        [sys.executable, "-c", script],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    return set(json.loads(completed.stdout.strip().splitlines()[-1]))


def imported_top_level_packages(modules: list[str], env: dict[str, str]) -> set[str]:
    return {name.split(".")[0] for name in imported_modules(modules, env)}


def test_shared_modules_import_neither_airflow_nor_metaflow():
    loaded = imported_top_level_packages(SHARED_MODULES, dict(os.environ))
    assert "metaflow_airflow" in loaded
    assert not {"airflow", "metaflow"} & loaded


def test_publish_command_starts_the_flow_process_before_the_heavy_imports():
    """`metaflow-airflow publish` imports the store's client and the manifest models while the
    flow process starts, not before (publish must not be slower than `airflow create`)."""
    publish = ["metaflow_airflow.cli", "metaflow_airflow.cli.publish"]
    loaded = imported_modules(publish, dict(os.environ))
    assert "metaflow_airflow.publish.publisher" in loaded
    assert not {"fsspec", "metaflow_airflow.manifest.models", "metaflow_airflow.store.manifest_store"} & loaded


@pytest.mark.timeout(300)
def test_airflow_side_never_imports_metaflow(tmp_path: Path):
    env = {
        **os.environ,
        "AIRFLOW_HOME": str(tmp_path / "airflow"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
    }
    loaded = imported_top_level_packages(AIRFLOW_SIDE_MODULES, env)
    assert "airflow" in loaded  # the modules really were imported
    assert "metaflow" not in loaded


PARSE_AFTER_PRE_IMPORT = """
import importlib, json, sys
from airflow.utils.file import iter_airflow_imports
try:
    from airflow.dag_processing.dagbag import DagBag
except ImportError:  # Airflow < 3.1
    from airflow.models.dagbag import DagBag
for name in iter_airflow_imports(sys.argv[1]):  # as the DAG processor does before it forks
    importlib.import_module(name)
before = set(sys.modules)
bag = DagBag(dag_folder=sys.argv[1])
print(json.dumps({"dags": sorted(bag.dag_ids), "errors": list(bag.import_errors.values()),
                  "imported": sorted(set(sys.modules) - before)}))
"""


@pytest.mark.timeout(300)
def test_the_dag_processor_pre_imports_the_kubernetes_provider_for_the_loader(tmp_path: Path):
    """Airflow's DAG processor imports the airflow modules a DAG file names once, before it
    forks each parse: dags_loader.py names the provider, so a parse of Kubernetes DAGs imports
    none of it (0.6-0.8 s per parse otherwise)."""
    store = ManifestStore(f"file://{tmp_path / 'store'}")
    store.write(make_manifest(FOREACH_STEPS, kubernetes=True).model_copy(update={"dag_id": "pods"}))
    env = {
        **os.environ,
        "AIRFLOW_HOME": str(tmp_path / "airflow"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "METAFLOW_AIRFLOW_STORE": store.url,
        "METAFLOW_AIRFLOW_CACHE_DIR": str(tmp_path / "cache"),
    }
    loader = Path(__file__).resolve().parents[2] / "dags_loader.py"
    completed = subprocess.run(
        [sys.executable, "-c", PARSE_AFTER_PRE_IMPORT, str(loader)],
        env=env, capture_output=True, text=True, timeout=300, check=True,
    )
    parsed = json.loads(completed.stdout.strip().splitlines()[-1])
    assert parsed["dags"] == ["pods"], parsed["errors"]
    assert "metaflow_airflow.airflow.compute.kubernetes" in parsed["imported"]  # built here, not before
    provider = [
        name for name in parsed["imported"]
        if name.startswith(("kubernetes", "airflow.providers.cncf.kubernetes"))
    ]
    assert provider == []


def test_all_names_exist():
    for name in metaflow_airflow.__all__:
        assert getattr(metaflow_airflow, name) is not None, name


def test_all_is_the_documented_api():
    assert set(metaflow_airflow.__all__) == DOCUMENTED_API
    assert len(metaflow_airflow.__all__) == len(DOCUMENTED_API)
    assert metaflow_airflow.__all__ == sorted(metaflow_airflow.__all__)


def test_every_public_attribute_is_exported():
    """As httpx's test_exported_members: nothing public is reachable but unlisted."""
    public = {
        name
        for name, value in vars(metaflow_airflow).items()
        if not name.startswith("_")
        and not isinstance(value, types.ModuleType)  # submodules
        and getattr(value, "__module__", "").startswith("metaflow_airflow")
    }
    assert public <= set(metaflow_airflow.__all__)


def test_exported_exceptions_are_the_error_tree():
    for name in ("CompileError", "PublishError", "StoreError", "ManifestError"):
        error = getattr(metaflow_airflow, name)
        assert error is getattr(errors, name)
        assert issubclass(error, metaflow_airflow.MetaflowAirflowError)
