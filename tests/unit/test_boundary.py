"""The two worlds meet only in the shared core, and the folders say which is which:

- ``publish/`` imports Metaflow, never Airflow nor ``airflow/``;
- ``airflow/`` imports Airflow, never Metaflow nor ``publish/``;
- the core (``manifest/``, ``store/``, ``runtime/``, ``rest/``, ``errors``, ``settings``) imports
  neither world, nor either side's package;
- the Metaflow extension (``metaflow_extensions/airflow_manifest``) is publish-side: Metaflow and
  ``publish/``, never Airflow nor ``airflow/``;
- ``cli/`` and ``mwaa/`` import both sides' packages only inside the commands that need them.

Checked twice: every import statement of every module of a folder, wherever it stands (a lazy
import inside a function counts), and what importing every module of a folder loads, in a
fresh interpreter (what a module's imports import counts). And the public API is what we
document.
"""

from __future__ import annotations

import ast
import importlib.util
import json
import os
import subprocess
import sys
import types
from pathlib import Path

import pytest
from helpers import REPO
from manifests import FOREACH_STEPS, make_manifest

import metaflow_airflow
from metaflow_airflow import ManifestStore, errors

PACKAGE = REPO / "metaflow_airflow"
CORE = ["manifest", "store", "runtime", "rest", "errors.py", "settings.py", "version.py"]
# Folder (or module) of the package -> what no import statement in it may name: a top-level
# package, or a subpackage of ours.
FORBIDDEN = {
    "publish": {"airflow", "metaflow_airflow.airflow"},
    "airflow": {"metaflow", "metaflow_airflow.publish"},
    **{part: {"airflow", "metaflow", "metaflow_airflow.airflow", "metaflow_airflow.publish"}
       for part in CORE},
}
# The same at run time, over a folder's modules and everything they import.
LOADED = {
    "publish": {"airflow"},
    "airflow": {"metaflow", "metaflow_airflow.publish"},
    "core": {"airflow", "metaflow", "metaflow_airflow.airflow", "metaflow_airflow.publish"},
    "cli": {
        "airflow", "metaflow", "metaflow_airflow.airflow", "metaflow_airflow.publish.flow_process"
    },
}
# Modules that need Airflow 3's DAG bundles: on Airflow 2 they refuse to import, saying so.
NEEDS_DAG_BUNDLES = {"metaflow_airflow.airflow.loader.bundle"}
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


def module_files(part: str) -> list[Path]:
    path = PACKAGE / part
    return [path] if path.suffix == ".py" else sorted(path.rglob("*.py"))


def module_name(file: Path) -> str:
    parts = file.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_names(file: Path) -> list[tuple[int, str]]:
    """(line, module) of every import statement of ``file``, relative ones resolved."""
    names = []
    package = module_name(file)
    if file.name != "__init__.py":
        package = package.rsplit(".", 1)[0]
    for node in ast.walk(ast.parse(file.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = package.split(".")
            if node.level > 1:
                base = base[: len(base) - node.level + 1]
            module = ".".join([*base, node.module or ""]) if node.level else node.module or ""
            names.append((node.lineno, module.rstrip(".")))
    return names


def names_one_of(module: str, forbidden: set[str]) -> bool:
    return any(module == f or module.startswith(f + ".") for f in forbidden)


def forbidden_imports(part: str) -> list[str]:
    return [
        f"{file.relative_to(REPO)}:{line}: {module}"
        for file in module_files(part)
        for line, module in imported_names(file)
        if names_one_of(module, FORBIDDEN[part])
    ]


@pytest.mark.parametrize("part", sorted(FORBIDDEN))
def test_no_module_of_a_folder_imports_the_world_it_must_not(part: str):
    assert module_files(part), f"metaflow_airflow/{part} is gone: update the boundary"
    assert forbidden_imports(part) == []


EXTENSION = REPO / "metaflow_extensions" / "airflow_manifest"


def test_the_metaflow_extension_is_publish_side():
    """The flow command and the Deployer run in Metaflow's processes: never Airflow."""
    files = sorted(EXTENSION.rglob("*.py"))
    assert files, "metaflow_extensions/airflow_manifest is gone: update the boundary"
    found = [
        f"{file.relative_to(REPO)}:{line}: {module}"
        for file in files
        for line, module in imported_names(file)
        if names_one_of(module, FORBIDDEN["publish"])
    ]
    assert found == []


def test_the_check_sees_a_lazy_import_of_the_wrong_world(tmp_path: Path, monkeypatch):
    """The check itself: an import of Airflow inside a publish-side function is found."""
    module = tmp_path / "metaflow_airflow" / "publish" / "sneaky.py"
    module.parent.mkdir(parents=True)
    module.write_text("def f():\n    from airflow.models import DAG\n    return DAG\n")
    monkeypatch.setattr(sys.modules[__name__], "PACKAGE", tmp_path / "metaflow_airflow")
    monkeypatch.setattr(sys.modules[__name__], "REPO", tmp_path)
    assert forbidden_imports("publish") == ["metaflow_airflow/publish/sneaky.py:2: airflow.models"]


def test_every_folder_of_the_package_is_in_a_world():
    folders = {p.name for p in PACKAGE.iterdir() if p.is_dir() and p.name != "__pycache__"}
    modules = {p.name for p in PACKAGE.glob("*.py")}
    assert folders | modules == {*FORBIDDEN, "cli", "mwaa", "__init__.py"}


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


def world_modules(world: str) -> list[str]:
    """Every module of ``world`` that this Airflow can import (the DAG bundle is Airflow 3's)."""
    parts = CORE if world == "core" else [world]
    names = [module_name(file) for part in parts for file in module_files(part)]
    if importlib.util.find_spec("airflow.dag_processing.bundles") is None:
        names = [name for name in names if name not in NEEDS_DAG_BUNDLES]
    return names


@pytest.mark.timeout(300)
@pytest.mark.parametrize("world", sorted(LOADED))
def test_importing_a_whole_world_loads_nothing_of_the_other(world: str, tmp_path: Path):
    env = {
        **os.environ,
        "AIRFLOW_HOME": str(tmp_path / "airflow"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
    }
    modules = world_modules(world)
    loaded = imported_modules(modules, env)
    assert set(modules) <= loaded  # the modules really were imported
    assert sorted(m for m in loaded if names_one_of(m, LOADED[world])) == []


def test_the_package_and_the_provider_import_neither_world():
    """Airflow loads the provider for every CLI command; the package's API is lazy."""
    loaded = imported_modules(
        ["metaflow_airflow", "metaflow_airflow.airflow.provider"], dict(os.environ)
    )
    assert not {name.split(".")[0] for name in loaded} & {"airflow", "metaflow"}


def test_publish_command_starts_the_flow_process_before_the_heavy_imports():
    """`metaflow-airflow publish` imports the store's client and the manifest models while the
    flow process starts, not before (publish must not be slower than `airflow create`)."""
    publish = ["metaflow_airflow.cli", "metaflow_airflow.cli.publish"]
    loaded = imported_modules(publish, dict(os.environ))
    assert "metaflow_airflow.publish.publisher" in loaded
    heavy = {"fsspec", "metaflow_airflow.manifest.models", "metaflow_airflow.store.manifest_store"}
    assert not heavy & loaded


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
    loader = REPO / "dags_loader.py"
    completed = subprocess.run(
        [sys.executable, "-c", PARSE_AFTER_PRE_IMPORT, str(loader)],
        env=env, capture_output=True, text=True, timeout=300, check=True,
    )
    parsed = json.loads(completed.stdout.strip().splitlines()[-1])
    assert parsed["dags"] == ["pods"], parsed["errors"]
    # Built here, not before:
    assert "metaflow_airflow.airflow.compute.kubernetes" in parsed["imported"]
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
