"""ManifestStore against a local folder and real S3 (moto), Azure Blob (azurite) and GCS
(fake-gcs-server) servers: round trips, atomic replacement, isolation of broken manifests; and a
flow published to each cloud store and parsed by Airflow."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import pytest
from store_helpers import make_manifest

from metaflow_airflow import ManifestError, ManifestStore, StoreError

pytestmark = pytest.mark.timeout(120)


# Each cloud's fixture: a fresh, empty bucket (container) on that cloud's server.
CLOUD_BUCKETS = {"s3": "s3_bucket_info", "azure": "azure_container", "gcs": "gcs_bucket"}


@pytest.fixture(params=["file", *CLOUD_BUCKETS])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> ManifestStore:
    """An empty store: a local folder (file://) or a fresh bucket on the S3, Azure Blob or GCS
    server (s3://, az://, gs://)."""
    if request.param == "file":
        return ManifestStore(f"file://{tmp_path / 'store'}")
    bucket = request.getfixturevalue(CLOUD_BUCKETS[request.param])
    return ManifestStore(f"{bucket.url}/flows", bucket.storage_options)


def put_raw(store: ManifestStore, dag_id: str, data: bytes) -> None:
    """Write bytes where the manifest of ``dag_id`` lives, bypassing validation."""
    folder = f"{store.root}/manifests"
    store.fs.makedirs(folder, exist_ok=True)
    store.fs.pipe_file(f"{folder}/{dag_id}.json", data)


def test_empty_store_lists_nothing(store: ManifestStore) -> None:
    assert store.list() == []
    assert store.read_all() == ({}, {})


def test_write_list_read_round_trip(store: ManifestStore) -> None:
    first, second = make_manifest("Hello"), make_manifest("Another.flow-2")

    url = store.write(first)
    store.write(second)

    assert url == f"{store.url}/manifests/Hello.json"
    assert store.list() == ["Another.flow-2", "Hello"]
    assert store.read("Hello") == first
    assert store.read("Hello").to_json() == first.to_json()
    manifests, errors = store.read_all()
    assert errors == {}
    assert manifests == {"Hello": first, "Another.flow-2": second}


def test_write_replaces_the_previous_manifest(store: ManifestStore) -> None:
    store.write(make_manifest(description="old"))
    store.write(make_manifest(description="new"))

    assert store.list() == ["Hello"]
    assert store.read("Hello").description == "new"


def test_missing_manifest_is_a_store_error(store: ManifestStore) -> None:
    with pytest.raises(StoreError, match="Nope.json"):
        store.read("Nope")


def test_local_write_leaves_no_temporary_files(tmp_path: Path) -> None:
    store = ManifestStore(f"file://{tmp_path / 'store'}")
    for i in range(20):
        store.write(make_manifest(description=f"version {i}"))

    assert sorted(p.name for p in (tmp_path / "store" / "manifests").iterdir()) == ["Hello.json"]
    assert store.read("Hello").description == "version 19"


def test_readers_never_see_a_partial_manifest(store: ManifestStore) -> None:
    """A writer replaces the manifest over and over (two versions of very different sizes);
    every one of 200 concurrent reads yields one of the two, complete and valid."""
    versions = [make_manifest(description="short"), make_manifest(description="long " * 8_000)]
    store.write(versions[0])
    stop = threading.Event()
    writes = 0
    failure: list[BaseException] = []

    def rewrite() -> None:
        nonlocal writes
        try:
            while not stop.is_set():
                store.write(versions[writes % 2])
                writes += 1
        except BaseException as exc:  # surfaced in the main thread
            failure.append(exc)

    writer = threading.Thread(target=rewrite, daemon=True)
    writer.start()
    try:
        for i in range(200):
            manifest = store.read("Hello")  # raises ManifestError on a torn read
            assert manifest in versions
            if i % 10 == 0:  # the loader's bulk read path too
                manifests, errors = store.read_all()
                assert errors == {}
                assert manifests["Hello"] in versions
    finally:
        stop.set()
        writer.join(timeout=30)
    assert not failure, failure
    assert writes > 0
    if store.url.startswith("file://"):
        assert [p for p in store.fs.ls(f"{store.root}/manifests", detail=False)] == [
            f"{store.root}/manifests/Hello.json"
        ]


def _schema_violation() -> bytes:
    document: dict[str, Any] = json.loads(make_manifest("Bad").to_json())
    document["steps"][0]["resources"]["cpu"] = -1
    return json.dumps(document).encode()


@pytest.mark.parametrize(
    ("blob", "field", "detail"),
    [
        pytest.param(b'{"dag_id": "Broken", "steps": [', "(document)", "invalid json", id="json"),
        pytest.param(_schema_violation(), "steps.0.resources.cpu", "greater than 0", id="schema"),
    ],
)
def test_read_all_isolates_a_broken_manifest(
    store: ManifestStore, blob: bytes, field: str, detail: str
) -> None:
    good = make_manifest("Good")
    store.write(good)
    put_raw(store, "Bad", blob)

    manifests, errors = store.read_all()

    assert manifests == {"Good": good}
    assert list(errors) == ["Bad"]
    error = errors["Bad"]
    assert isinstance(error, ManifestError)
    url = f"{store.url}/manifests/Bad.json"
    assert error.url == url
    message = str(error)
    assert message.startswith(f"{url}: field {field}: ")
    assert detail in message.lower()
    with pytest.raises(ManifestError) as raised:
        store.read("Bad")
    assert str(raised.value) == message


def test_a_json_document_that_is_not_a_manifest(store: ManifestStore) -> None:
    put_raw(store, "List", b"[1, 2, 3]")
    manifests, errors = store.read_all()
    assert manifests == {}
    assert str(errors["List"]).startswith(f"{store.url}/manifests/List.json: field (document): ")


def test_files_that_are_not_manifests_are_ignored(store: ManifestStore) -> None:
    store.write(make_manifest("Hello"))
    store.fs.pipe_file(f"{store.root}/manifests/README.txt", b"not a manifest")
    store.fs.pipe_file(f"{store.root}/other.json", b"{}")
    assert store.list() == ["Hello"]
    manifests, errors = store.read_all()
    assert list(manifests) == ["Hello"] and errors == {}


@pytest.mark.parametrize("url", ["", None])
def test_no_store_configured_is_a_store_error(url: str | None) -> None:
    with pytest.raises(StoreError, match="no manifest store configured"):
        ManifestStore(url)  # type: ignore[arg-type]


def test_loader_without_a_store_raises_in_strict_mode() -> None:
    from metaflow_airflow.airflow.loader.parse import load_dags
    from metaflow_airflow.settings import Settings

    assert load_dags(settings=Settings()) == {}
    with pytest.raises(StoreError, match="no manifest store configured"):
        load_dags(settings=Settings(strict=True))


def test_unknown_protocol_is_a_store_error() -> None:
    with pytest.raises(StoreError, match="cannot open manifest store"):
        ManifestStore("nosuchprotocol://bucket/flows")


def test_an_s3_client_that_cannot_be_set_up_is_a_store_error() -> None:
    with pytest.raises(StoreError, match=r"cannot open manifest store s3://bucket/flows: .*nope"):
        ManifestStore("s3://bucket/flows", {"profile": "nope"})


@pytest.mark.timeout(300)
@pytest.mark.parametrize("cloud", sorted(CLOUD_BUCKETS))
def test_flow_published_to_a_cloud_store_parses_in_airflow(
    request: pytest.FixtureRequest, publish, dagbag, cloud: str
) -> None:
    """Publish with local compute and the local datastore, the manifest going to the cloud
    store; Airflow's DagBag parses dags_loader.py against that store."""
    bucket = request.getfixturevalue(CLOUD_BUCKETS[cloud])
    store_url = f"{bucket.url}/flows"
    options = bucket.storage_options

    result = publish("foreach_flow.py", store=store_url, storage_options=options, compute="local")

    assert result.dag_id == "ForeachFlow"
    assert result.manifest_url == f"{store_url}/manifests/ForeachFlow.json"
    assert bucket.fs().exists(f"{bucket.name}/flows/manifests/ForeachFlow.json")
    manifest = ManifestStore(store_url, options).read("ForeachFlow")
    assert manifest.metaflow.datastore == "local"
    assert [s.name for s in manifest.steps] == ["start", "square", "shift", "join", "end"]

    bag = dagbag(store_url, options)

    assert bag.import_errors == {}
    dag = bag.get_dag("ForeachFlow")
    assert dag is not None
    assert sorted(dag.task_ids) == ["end", "join", "shift", "square", "start"]
    assert set(dag.params) == {"offset"}
