"""Versioned publish on a local folder and real S3 (moto), Azure Blob (azurite) and GCS
(fake-gcs-server) servers: every publish is an immutable version, the current pointer moves;
history, rollback and delete; concurrent publishes; signatures follow the pointer."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from store_helpers import make_manifest, put_raw

from metaflow_airflow import ManifestStore, StoreError
from metaflow_airflow.manifest.signing import verify
from metaflow_airflow.store.clouds.base import WriteConflict
from metaflow_airflow.store.clouds.registry import cloud_of

pytestmark = pytest.mark.timeout(300)

CLOUD_BUCKETS = {"s3": "s3_bucket_info", "azure": "azure_container", "gcs": "gcs_bucket"}
KEY = b"k" * 32


@pytest.fixture(params=["file", *CLOUD_BUCKETS])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> ManifestStore:
    """An empty store: a local folder or a fresh bucket on one cloud's server."""
    if request.param == "file":
        return ManifestStore(f"file://{tmp_path / 'store'}")
    bucket = request.getfixturevalue(CLOUD_BUCKETS[request.param])
    return ManifestStore(f"{bucket.url}/flows", bucket.storage_options)


def short(manifest) -> str:
    return manifest.content_hash[:12]


def test_every_publish_is_a_version_and_the_newest_is_current(store: ManifestStore) -> None:
    first, second = make_manifest(description="one"), make_manifest(description="two")

    assert store.write(first) == f"{store.url}/manifests/Hello.json"
    store.write(second)

    history = store.history("Hello")
    assert [v.content_hash for v in history] == [short(first), short(second)]
    assert [v.current for v in history] == [False, True]
    assert history[0].created_at <= history[1].created_at
    assert all(v.name.endswith(v.content_hash) for v in history)
    assert store.read("Hello") == second
    assert store.read_version("Hello", history[0].name) == first
    version_path = f"{store.root}/versions/Hello/{history[0].name}.json"
    assert store.fs.cat_file(version_path) == first.to_json().encode()
    assert store.list() == ["Hello"]


def test_rollback_to_the_previous_or_a_named_version(store: ManifestStore) -> None:
    manifests = [make_manifest(description=f"v{i}") for i in range(3)]
    for manifest in manifests:
        store.write(manifest)
    names = [v.name for v in store.history("Hello")]

    assert store.rollback("Hello").name == names[1]
    assert store.read("Hello") == manifests[1]
    assert store.rollback("Hello", to=short(manifests[0])).name == names[0]
    assert store.read("Hello") == manifests[0]
    assert store.rollback("Hello", to=names[2]).name == names[2]
    assert store.read("Hello") == manifests[2]

    history = store.history("Hello")
    assert [v.name for v in history] == names  # a rollback adds no version
    assert [v.current for v in history] == [False, False, True]


def test_rollback_refuses_what_does_not_exist(store: ManifestStore) -> None:
    store.write(make_manifest())
    with pytest.raises(StoreError, match="current version is the oldest"):
        store.rollback("Hello")
    with pytest.raises(StoreError, match="has no version 'nope'"):
        store.rollback("Hello", to="nope")
    with pytest.raises(StoreError, match="no manifest and no history for Other"):
        store.rollback("Other")


def test_delete_removes_the_dag_and_keeps_its_history(store: ManifestStore) -> None:
    first, second = make_manifest(description="one"), make_manifest(description="two")
    store.write(first)
    store.write(second)
    store.write(make_manifest("Other"))

    store.delete("Hello")

    assert store.list() == ["Other"]
    with pytest.raises(StoreError, match="no manifest"):
        store.read("Hello")
    history = store.history("Hello")
    assert [v.content_hash for v in history] == [short(first), short(second)]
    assert not any(v.current for v in history)
    with pytest.raises(StoreError, match="no manifest"):
        store.delete("Hello")

    store.rollback("Hello")  # after a delete: the newest version comes back

    assert store.list() == ["Hello", "Other"]
    assert store.read("Hello") == second


def test_a_manifest_written_before_versioning_keeps_working(store: ManifestStore) -> None:
    legacy = make_manifest(description="legacy")
    put_raw(store, "Hello", legacy.to_json().encode())

    assert store.history("Hello") == []
    with pytest.raises(StoreError, match="no stored versions"):
        store.rollback("Hello")

    store.write(make_manifest(description="new"))
    assert [v.current for v in store.history("Hello")] == [True]


def test_twenty_concurrent_publishes(store: ManifestStore) -> None:
    """20 writers of one DAG at once: 20 versions, and the current manifest is one of them,
    whole; where the store enforces conditional writes (all but GCS through gcsfs), it is the
    newest version."""
    manifests = [make_manifest(description=f"version {i}") for i in range(20)]

    with ThreadPoolExecutor(max_workers=20) as pool:
        list(pool.map(store.write, manifests))

    history = store.history("Hello")
    assert len(history) == 20
    assert {v.content_hash for v in history} == {short(m) for m in manifests}
    assert [v.current for v in history].count(True) == 1
    assert store.read("Hello") in manifests
    if "gs" not in store.fs.protocol:
        assert history[-1].current
    assert store.list() == ["Hello"]


def test_signatures_follow_the_current_manifest(store: ManifestStore) -> None:
    first, second = make_manifest(description="one"), make_manifest(description="two")
    pointer_signature = f"{store.root}/manifests/Hello.json.sig"

    store.write(first, signing_key=KEY)
    store.write(second, signing_key=KEY)
    first_name, second_name = [version.name for version in store.history("Hello")]

    def current_activation(manifest) -> str:
        return verify(manifest.to_json().encode(), store.fs.cat_file(pointer_signature), KEY)

    # A publish signs the time it made the manifest current (after its version was stored).
    second_activation = current_activation(second)
    assert second_activation >= second_name[:23]
    version_signature = f"{store.root}/versions/Hello/{first_name}.json.sig"
    first_bytes = first.to_json().encode()
    assert verify(first_bytes, store.fs.cat_file(version_signature), KEY) == first_name[:23]

    store.rollback("Hello")  # without the key: the version keeps its own (older) activation
    assert current_activation(first) < second_activation
    store.rollback("Hello", to=first_name, signing_key=KEY)  # with it: made current now
    assert current_activation(first) > second_activation

    store.write(make_manifest(description="unsigned"))  # an old signature would now be wrong
    assert not store.fs.exists(pointer_signature)


@pytest.mark.timeout(600)
def test_four_concurrent_publishes_through_metaflow(publish, s3_bucket_info) -> None:
    """Four real ``publish_flow`` calls of one flow at once, to S3, each with a tag of its own
    (an unchanged flow is not published again): four versions, and a current manifest that is
    one of them."""
    store_url = f"{s3_bucket_info.url}/flows"
    options = s3_bucket_info.storage_options

    def publish_once(n: int):
        return publish(
            "branch_flow.py", store=store_url, storage_options=options, tags=(f"publish-{n}",)
        )

    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(publish_once, range(4)))

    assert {r.dag_id for r in results} == {"BranchFlow"}
    store = ManifestStore(store_url, options)
    history = store.history("BranchFlow")
    assert len(history) == 4
    assert history[-1].current
    current = store.read("BranchFlow")
    assert [v.name for v in history if v.current] == [history[-1].name]
    assert store.read_version("BranchFlow", history[-1].name) == current


def test_a_pointer_deleted_under_a_conditional_write_is_a_conflict(store: ManifestStore) -> None:
    """Between reading the pointer's tag and replacing it, a delete removed it: the write must
    be retried (as a create), not fail the publish after its version was stored."""
    store.write(make_manifest(description="first"))
    path = f"{store.root}/manifests/Hello.json"
    cloud = cloud_of(store.fs)
    tag = cloud.change_tag(store.fs.info(path))
    store.fs.rm_file(path)
    if cloud.name in ("local", "gs"):  # a folder lock / last writer wins: nothing to lose
        cloud.replace(store.fs, path, b"{}", tag)
        assert store.fs.cat_file(path) == b"{}"
        return
    with pytest.raises(WriteConflict):
        cloud.replace(store.fs, path, b"{}", tag)


def test_publishes_racing_deletes_all_succeed(store: ManifestStore) -> None:
    """Every publish is done and kept as a version; every delete is done or refused with a
    clear error (nothing to delete)."""
    manifests = [make_manifest(description=f"version {i}") for i in range(12)]
    refused: list[str] = []

    def delete() -> None:
        try:
            store.delete("Hello")
        except StoreError as exc:
            refused.append(str(exc))

    with ThreadPoolExecutor(max_workers=8) as pool:
        writes = [pool.submit(store.write, m) for m in manifests]
        deletes = [pool.submit(delete) for _ in range(12)]
        for future in [*writes, *deletes]:
            future.result()

    assert {v.content_hash for v in store.history("Hello")} == {short(m) for m in manifests}
    assert [m for m in refused if not m.startswith("no manifest ")] == []
