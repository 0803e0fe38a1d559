"""Older manifest versions for the runs that started on them (``airflow/loader/versions.py``):
a worker's parse for a task the current manifest no longer has builds the DAG from the newest
stored version that has it, and a run's tasks read back exactly the version their run started
with, from the store their DAG came from, refused if its bytes or signature do not match."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from store_helpers import make_manifest

from metaflow_airflow import ManifestStore
from metaflow_airflow.airflow.loader.fetcher import Unavailable
from metaflow_airflow.airflow.loader.parse import load_dags
from metaflow_airflow.airflow.loader.versions import configured_store, read_version, store_of
from metaflow_airflow.manifest.models import StepSpec
from metaflow_airflow.settings import Settings

pytestmark = pytest.mark.timeout(120)

KEY = "k" * 32  # a signing key


def _steps(middle: str) -> tuple[StepSpec, ...]:
    return (
        StepSpec(name="start", type="linear", next=(middle,)),
        StepSpec(name=middle, type="linear", parents=("start",), next=("end",)),
        StepSpec(name="end", type="end", parents=(middle,)),
    )


@pytest.fixture
def store(tmp_path: Path) -> ManifestStore:
    """v1 (start → middle → end), then v2, which renames ``middle`` to ``renamed``."""
    store = ManifestStore(f"file://{tmp_path / 'store'}")
    base = make_manifest()
    store.write(base.model_copy(update={"steps": _steps("middle"), "description": "v1"}))
    store.write(base.model_copy(update={"steps": _steps("renamed"), "description": "v2"}))
    return store


def _settings(store: ManifestStore, tmp_path: Path, **more: Any) -> Settings:
    return Settings(store=store.url, cache_dir=tmp_path / "cache", **more)


def _parse_for_task(monkeypatch, settings: Settings, task_id: str):
    dag_id = settings.dag_id_prefix + "Hello"
    monkeypatch.setenv("_AIRFLOW_PARSING_CONTEXT_DAG_ID", dag_id)
    monkeypatch.setenv("_AIRFLOW_PARSING_CONTEXT_TASK_ID", task_id)
    return load_dags(settings=settings)[dag_id]


@pytest.mark.parametrize("prefix", ["", "team_"])
def test_a_task_the_current_version_lacks_comes_from_the_version_that_has_it(
    store, tmp_path, monkeypatch, prefix
):
    settings = _settings(store, tmp_path, dag_id_prefix=prefix)
    assert "renamed" in _parse_for_task(monkeypatch, settings, "renamed").task_dict
    dag = _parse_for_task(monkeypatch, settings, "middle")
    assert set(dag.task_dict) == {"start", "middle", "end"}
    assert dag.description == "v1"
    # a task no version has: the current DAG, as before (Airflow reports the missing task)
    assert "renamed" in _parse_for_task(monkeypatch, settings, "nowhere").task_dict


def test_a_run_reads_back_exactly_its_version(store, tmp_path):
    fetcher = configured_store(_settings(store, tmp_path))
    v1, _ = store.history("Hello")
    first = store.read_version("Hello", v1.name)
    pinned = read_version(fetcher, "Hello", first.content_hash)
    assert pinned.description == "v1" and pinned.content_hash == first.content_hash
    # the same short name, other bytes (a version rewritten in place): refused
    path = f"{store.root}/versions/Hello/{v1.name}.json"
    store.fs.pipe_file(path, store.fs.cat_file(path).replace(b'"v1"', b'"v9"'))
    with pytest.raises(Unavailable, match="SHA-256"):
        read_version(fetcher, "Hello", first.content_hash)
    with pytest.raises(Unavailable, match="no version"):
        read_version(fetcher, "Hello", "0" * 64)


def test_a_run_reads_its_version_back_from_the_store_its_dag_came_from(store, tmp_path):
    """A loader file with a store of its own (``load_dags(store=...)``), beside the store that
    METAFLOW_AIRFLOW_STORE names: the run's version is read back from the loader's store."""
    other = ManifestStore(f"file://{tmp_path / 'other'}")
    other.write(make_manifest().model_copy(update={"description": "elsewhere"}))
    settings = Settings(store=other.url, cache_dir=tmp_path / "cache")
    assert "Hello" in load_dags(store=store.url, settings=settings)
    first = store.read_version("Hello", store.history("Hello")[0].name)
    pinned = read_version(store_of("Hello", settings), "Hello", first.content_hash)
    assert pinned.description == "v1"


def test_a_signed_only_worker_reads_back_only_signed_versions(store, tmp_path):
    fetcher = configured_store(_settings(store, tmp_path, require_signed=True, signing_key=KEY))
    unsigned = store.read_version("Hello", store.history("Hello")[0].name)
    with pytest.raises(Unavailable, match="unsigned"):
        read_version(fetcher, "Hello", unsigned.content_hash)
    signed = make_manifest().model_copy(update={"steps": _steps("middle"), "description": "v3"})
    store.write(signed, signing_key=KEY.encode())
    assert read_version(fetcher, "Hello", signed.content_hash).description == "v3"
