"""The dags folder as a versioned bundle (``airflow/loader/bundle.py``, Airflow 3): its version
follows the manifest store and the folder (a digest of their state: a publish, a deletion or a
file added to the folder changes it, nothing else does), it
survives the store going away (kept, also across a restart), and Airflow's own bundle manager
builds it from ``dag_bundle_config_list`` and finds the loader file in it. That a run then stays
on its DAG is the topology's test (``tests/topology/test_run_version.py``)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from store_helpers import make_manifest

from metaflow_airflow import ManifestStore

pytest.importorskip("airflow.dag_processing.bundles.local", reason="DAG bundles are Airflow 3's")

from metaflow_airflow.airflow.loader.bundle import ManifestStoreBundle  # noqa: E402

pytestmark = pytest.mark.timeout(120)


def _version(bundle: ManifestStoreBundle) -> str:
    current = bundle.get_current_version()
    return current if isinstance(current, str) else current.version


@pytest.fixture
def store(tmp_path: Path) -> ManifestStore:
    store = ManifestStore(f"file://{tmp_path / 'store'}")
    store.write(make_manifest())
    return store


@pytest.fixture(autouse=True)
def bundle_storage(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "bundles"
    monkeypatch.setenv("AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_STORAGE_PATH", str(root))
    return root


def _bundle(store_url: str, tmp_path: Path) -> ManifestStoreBundle:
    (tmp_path / "dags").mkdir(exist_ok=True)
    return ManifestStoreBundle(name="metaflow", path=str(tmp_path / "dags"), store=store_url)


def test_the_version_follows_the_store(store, tmp_path):
    bundle = _bundle(store.url, tmp_path)
    first = _version(bundle)
    assert first.startswith("manifests-")
    bundle.refresh()
    assert _version(bundle) == first  # nothing published: the same version
    assert _version(_bundle(store.url, tmp_path)) == first  # the same on another process

    store.write(make_manifest(description="v2"))
    bundle.refresh()
    second = _version(bundle)
    assert second != first
    store.write(make_manifest("Other"))
    bundle.refresh()
    third = _version(bundle)
    store.delete("Other")
    bundle.refresh()
    assert third not in (first, second)
    assert _version(bundle) == second  # the store as it was: its version (a content digest)

    # a DAG file added beside the loader: Airflow looks for it only when the version changes
    (tmp_path / "dags" / "hand_written.py").write_text("# a DAG\n")
    assert _version(bundle) not in (first, second, third)


def test_a_store_gone_keeps_the_last_version(store, tmp_path, caplog):
    bundle = _bundle(store.url, tmp_path)
    known = _version(bundle)
    store.fs.rm(store.root, recursive=True)
    (tmp_path / "store").write_text("not a folder any more")
    bundle.refresh()
    assert _version(bundle) == known
    assert "keeps the store's last listing" in caplog.text
    # a DAG processor restarted meanwhile: the version this machine listed last
    assert _version(_bundle(store.url, tmp_path)) == known


def test_never_listed_is_still_a_version(tmp_path):
    (tmp_path / "no-store").write_text("a file, not a folder")
    bundle = _bundle(f"file://{tmp_path / 'no-store'}/x", tmp_path)
    unlisted = _version(bundle)
    assert unlisted.startswith("manifests-")
    (tmp_path / "dags" / "dags_loader.py").write_text("# the loader\n")
    assert _version(bundle) != unlisted


def test_airflow_builds_it_from_its_configuration(store, tmp_path, monkeypatch):
    from airflow.dag_processing.bundles.manager import DagBundlesManager

    dags = tmp_path / "dags"
    dags.mkdir()
    (dags / "dags_loader.py").write_text("from metaflow_airflow import load_dags\n")
    config = [
        {
            "name": "metaflow",
            "classpath": "metaflow_airflow.airflow.loader.bundle.ManifestStoreBundle",
            "kwargs": {"path": str(dags), "store": store.url},
        }
    ]
    monkeypatch.setenv("AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_CONFIG_LIST", json.dumps(config))
    manager = DagBundlesManager()
    latest = manager.get_bundle("metaflow")
    assert latest.supports_versioning
    version = _version(latest)
    # a worker given a run's version: the same loader file
    worker = manager.get_bundle("metaflow", version=version)
    worker.initialize()
    assert worker.version == version
    assert (worker.path / "dags_loader.py").exists()
