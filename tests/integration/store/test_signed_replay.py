"""Signed mode, attacked by a store writer without the key: an older signed version copied over
the current manifest, or a deleted DAG brought back from its history, is refused as a replay;
a publish or a rollback made with the key is accepted. And a reader never sees a manifest
beside a signature that does not sign it, while signed publishes, rollbacks and deletes race."""

from __future__ import annotations

import random
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from store_helpers import make_manifest

from metaflow_airflow import ManifestStore, StoreError
from metaflow_airflow.airflow.dag.placeholder import ERROR_TAG
from metaflow_airflow.airflow.loader.parse import load_dags
from metaflow_airflow.settings import Settings

pytestmark = pytest.mark.timeout(600)

KEY = "r" * 64
# Signed publishes (three in four), signed rollbacks and deletes, from six threads.
OPERATIONS = 200


@pytest.fixture(params=["file", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> ManifestStore:
    if request.param == "file":
        return ManifestStore(f"file://{tmp_path / 'store'}")
    bucket = request.getfixturevalue("s3_bucket_info")
    return ManifestStore(f"{bucket.url}/flows", bucket.storage_options)


def signed_loader(store: ManifestStore, tmp_path: Path):
    settings = Settings(
        store=store.url, storage_options=store.fs.storage_options, cache_dir=tmp_path / "cache",
        require_signed=True, signing_key=KEY,
    )
    return lambda: load_dags(settings=settings)


def copy_version_over_the_pointer(store: ManifestStore, name: str) -> None:
    """What a store writer without the key can do: any version ever signed, made current."""
    for suffix in ("", ".sig"):
        data = store.fs.cat_file(f"{store.root}/versions/Hello/{name}.json{suffix}")
        store.fs.pipe_file(f"{store.root}/manifests/Hello.json{suffix}", data)


def test_an_older_signed_version_copied_back_is_refused(store, tmp_path: Path) -> None:
    load = signed_loader(store, tmp_path)
    store.write(make_manifest(description="first"), signing_key=KEY.encode())
    store.write(make_manifest(description="second"), signing_key=KEY.encode())
    assert load()["Hello"].description == "second"
    first, _ = [v.name for v in store.history("Hello")]

    copy_version_over_the_pointer(store, first)
    dag = load()["Hello"]
    assert dag.description == "second"  # the last good version keeps running
    assert "refused as a replay" in dag.doc_md

    store.rollback("Hello", to=first, signing_key=KEY.encode())  # the key holder's rollback
    dag = load()["Hello"]
    assert dag.description == "first" and "replay" not in dag.doc_md


def test_a_deleted_dag_brought_back_from_its_history_is_refused(store, tmp_path: Path) -> None:
    load = signed_loader(store, tmp_path)
    store.write(make_manifest(description="only"), signing_key=KEY.encode())
    assert "Hello" in load()
    store.delete("Hello")
    assert "Hello" not in load()

    (only,) = [v.name for v in store.history("Hello")]
    copy_version_over_the_pointer(store, only)
    dag = load()["Hello"]
    assert ERROR_TAG in dag.tags and "refused as a replay" in dag.doc_md

    store.write(make_manifest(description="published again"), signing_key=KEY.encode())
    dag = load()["Hello"]
    assert dag.description == "published again" and ERROR_TAG not in dag.tags


def test_a_parsing_loop_never_sees_a_manifest_its_signature_does_not_sign(
    store, tmp_path: Path
) -> None:
    """Signed publishes, signed rollbacks and deletes from several threads, and the loader
    parsing all along: no parse shows a mismatched signature (a manifest and its signature are
    two objects; the loader reads a mismatched pair once more before it counts as altered)."""
    key = KEY.encode()
    store.write(make_manifest(description="start"), signing_key=key)
    load = signed_loader(store, tmp_path)
    done = threading.Event()
    seen: dict = {"parses": 0, "mismatched": []}

    def read_until_done() -> None:
        while not done.is_set():
            dag = load().get("Hello")
            seen["parses"] += 1
            if dag is not None and "signature does not match" in (dag.doc_md or ""):
                seen["mismatched"].append(dag.doc_md)

    refused: list[str] = []
    published: list[str] = []

    def operate(index: int) -> None:
        choice = random.Random(index).random()
        try:
            if choice < 0.75:
                manifest = make_manifest(description=f"v{index}")
                store.write(manifest, signing_key=key)
                published.append(manifest.content_hash[:12])
            elif choice < 0.9:
                store.rollback("Hello", signing_key=key)
            else:
                store.delete("Hello")
        except StoreError as exc:  # nothing to roll back to or delete, at that moment
            refused.append(str(exc))

    reader = threading.Thread(target=read_until_done)
    reader.start()
    try:
        with ThreadPoolExecutor(max_workers=6) as pool:
            list(pool.map(operate, range(OPERATIONS)))
    finally:
        done.set()
        reader.join()

    assert seen["parses"] > 0
    assert seen["mismatched"] == []
    stored = {version.content_hash for version in store.history("Hello")}
    assert set(published) <= stored  # no version lost
    clear = ("no manifest ", "changed during the rollback", "nothing to roll back")
    assert [m for m in refused if not any(part in m for part in clear)] == []
