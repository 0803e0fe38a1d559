"""The loader's last-known-good cache against a real S3 server (moto) that each test owns, so it
can count the requests of a parse, stop the server (an outage) or freeze it (a hanging store);
broken manifests of every kind; the parsing-context fast path; signed-only loading."""

from __future__ import annotations

import gc
import json
import logging
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from moto_process import MotoServer
from servers import AWS_ENV
from store_helpers import make_manifest, put_raw

from metaflow_airflow import ManifestError, ManifestStore, StoreError
from metaflow_airflow.airflow.dag.placeholder import ERROR_TAG
from metaflow_airflow.airflow.loader.cache import HashedManifest
from metaflow_airflow.airflow.loader.parse import load_dags
from metaflow_airflow.errors import MetaflowAirflowError
from metaflow_airflow.manifest.signing import sign
from metaflow_airflow.settings import Settings

pytestmark = pytest.mark.timeout(300)

PARSING_CONTEXT = "_AIRFLOW_PARSING_CONTEXT_DAG_ID"
KEY = "s" * 32


@pytest.fixture(autouse=True)
def no_parsing_context(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(PARSING_CONTEXT, raising=False)


@pytest.fixture
def moto(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[MotoServer]:
    for name, value in AWS_ENV.items():
        monkeypatch.setenv(name, value)
    server = MotoServer(tmp_path / "moto")
    try:
        yield server
    finally:
        server.stop()


def settings(store: ManifestStore, tmp_path: Path, **overrides: Any) -> Settings:
    defaults: dict[str, Any] = {"store": store.url, "cache_dir": tmp_path / "cache"}
    if store.fs.storage_options:
        defaults["storage_options"] = store.fs.storage_options
    return Settings(**{**defaults, **overrides})


def s3_store(moto: MotoServer) -> ManifestStore:
    return ManifestStore(f"{moto.bucket()}/flows", moto.storage_options)


def file_store(tmp_path: Path) -> ManifestStore:
    return ManifestStore(f"file://{tmp_path / 'store'}")


def requests_by_kind(moto: MotoServer) -> dict[str, list[str]]:
    kinds: dict[str, list[str]] = {"list": [], "read": [], "other": []}
    for method, path in moto.requests():
        kind = "list" if "list-type=2" in path else "read" if method == "GET" else "other"
        kinds[kind].append(path.rsplit("/", 1)[-1])
    return kinds


# --- incremental refresh ----------------------------------------------------------------------


def test_a_parse_lists_once_and_reads_only_what_changed(moto: MotoServer, tmp_path: Path) -> None:
    store = s3_store(moto)
    for dag_id in ("a", "b", "c"):
        store.write(make_manifest(dag_id))
    config = settings(store, tmp_path)

    moto.record()
    assert sorted(load_dags(settings=config)) == ["a", "b", "c"]
    cold = requests_by_kind(moto)
    assert len(cold["list"]) == 1 and sorted(cold["read"]) == ["a.json", "b.json", "c.json"]
    assert cold["other"] == []

    moto.record()
    assert sorted(load_dags(settings=config)) == ["a", "b", "c"]
    assert requests_by_kind(moto) == {"list": [cold["list"][0]], "read": [], "other": []}

    store.write(make_manifest("b", description="changed"))
    moto.record()
    dags = load_dags(settings=config)
    assert dags["b"].description == "changed"
    assert requests_by_kind(moto) == {"list": [cold["list"][0]], "read": ["b.json"], "other": []}


def test_only_a_successful_listing_removes_a_dag(moto: MotoServer, tmp_path: Path) -> None:
    store = s3_store(moto)
    store.write(make_manifest("a"))
    store.write(make_manifest("b"))
    config = settings(store, tmp_path, store_timeout_seconds=3)
    assert sorted(load_dags(settings=config)) == ["a", "b"]

    store.delete("b")
    assert sorted(load_dags(settings=config)) == ["a"]

    store.rollback("b")
    moto.stop()
    assert sorted(load_dags(settings=config)) == ["a"]  # the cache after the listing without b


# --- outages ----------------------------------------------------------------------------------


@pytest.mark.parametrize("failure", ["stopped", "hanging", "hanging-client"])
def test_a_store_outage_serves_the_cached_dags(
    failure: str,
    moto: MotoServer,
    dagbag,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    request: pytest.FixtureRequest,
    warnings_logged: list[logging.LogRecord],
) -> None:
    """Parse with Airflow's DagBag, break the store, parse again: the same DAGs, no import
    error, one warning; a hanging store, or a client that never gets set up (credentials from a
    metadata service that does not answer), costs at most the timeout."""
    store = s3_store(moto)
    store.write(make_manifest("a"))
    store.write(make_manifest("b"))
    timeout = 3
    monkeypatch.setenv("METAFLOW_AIRFLOW_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("METAFLOW_AIRFLOW_STORE_TIMEOUT_SECONDS", str(timeout))
    before = dagbag(store.url, moto.storage_options)
    assert before.import_errors == {} and sorted(before.dag_ids) == ["a", "b"]
    assert warnings_logged == []

    if failure == "stopped":
        moto.stop()
    elif failure == "hanging":
        moto.freeze()
    else:
        unblock = threading.Event()
        request.addfinalizer(unblock.set)
        set_up = ManifestStore.__init__

        def never_set_up(self: ManifestStore, *args: Any, **kwargs: Any) -> None:
            unblock.wait()  # until the test ends
            set_up(self, *args, **kwargs)

        monkeypatch.setattr(ManifestStore, "__init__", never_set_up)
    started = time.monotonic()
    after = dagbag(store.url, moto.storage_options)
    elapsed = time.monotonic() - started

    assert after.import_errors == {}
    assert sorted(after.dag_ids) == ["a", "b"]
    assert elapsed < timeout + 5
    assert len(warnings_logged) == 1
    message = warnings_logged[0].getMessage()
    assert f"the manifest store {store.url} is unavailable" in message
    assert "serving 2 DAG(s) from the last-known-good cache" in message
    if failure != "stopped":
        assert f"no answer within {timeout} s" in message


def test_strict_mode_raises_when_the_store_is_down(moto: MotoServer, tmp_path: Path) -> None:
    store = s3_store(moto)
    store.write(make_manifest("a"))
    load_dags(settings=settings(store, tmp_path))
    moto.stop()
    with pytest.raises(StoreError, match="unavailable"):
        load_dags(settings=settings(store, tmp_path, strict=True, store_timeout_seconds=2))


def test_an_unwritable_cache_warns_once_and_still_loads(
    tmp_path: Path, warnings_logged: list[logging.LogRecord]
) -> None:
    store = file_store(tmp_path)
    store.write(make_manifest("a"))
    store.write(make_manifest("b"))
    (tmp_path / "not-a-folder").write_text("")

    dags = load_dags(settings=settings(store, tmp_path, cache_dir=tmp_path / "not-a-folder"))

    assert sorted(dags) == ["a", "b"]
    assert len(warnings_logged) == 1
    assert "cannot write the manifest cache" in warnings_logged[0].getMessage()
    assert dags["a"].get_task("start").step.name == "start"  # kept: there is no cache to read


def test_a_damaged_cache_is_a_cold_cache(tmp_path: Path) -> None:
    store = file_store(tmp_path)
    store.write(make_manifest("a"))
    config = settings(store, tmp_path)
    load_dags(settings=config)
    for path in (tmp_path / "cache").rglob("*.json"):
        path.write_text("{not json")

    assert sorted(load_dags(settings=config)) == ["a"]
    assert sorted(load_dags(settings=config)) == ["a"]


# --- bad manifests ----------------------------------------------------------------------------


def _with(change: dict[str, Any]) -> bytes:
    document = json.loads(make_manifest("bad").to_json())
    document.update(change)
    return json.dumps(document).encode()


BAD_MANIFESTS = [
    pytest.param(b'{"dag_id": "bad", "steps": [', "field (document): Invalid JSON", id="json"),
    pytest.param(
        make_manifest("bad").to_json().encode()[:300],
        "field (document): Invalid JSON",
        id="truncated",
    ),
    pytest.param(
        _with({"steps": [{"name": "start", "type": "start"}]}),
        "field steps: Tuple should have at least 2 items",
        id="schema",
    ),
    pytest.param(
        _with({"schema_version": 2}),
        "field schema_version: 2 is newer than this metaflow-airflow reads (1)",
        id="future-schema",
    ),
    pytest.param(
        _with({"dag_id": "other"}),
        "field dag_id: 'other' does not match its file name 'bad'",
        id="wrong-dag-id",
    ),
    pytest.param(b"[1, 2, 3]", "field (document): Input should be an object", id="not-an-object"),
]


@pytest.mark.parametrize(("blob", "error"), BAD_MANIFESTS)
def test_a_bad_new_manifest_becomes_a_placeholder_dag(
    blob: bytes, error: str, tmp_path: Path, warnings_logged: list[logging.LogRecord]
) -> None:
    store = file_store(tmp_path)
    store.write(make_manifest("good"))
    put_raw(store, "bad", blob)
    url = f"{store.url}/manifests/bad.json"

    dags = load_dags(settings=settings(store, tmp_path))

    assert sorted(dags) == ["bad", "good"]
    assert sorted(dags["good"].task_ids) == ["end", "start"]
    placeholder = dags["bad"]
    assert ERROR_TAG in placeholder.tags
    assert url in placeholder.doc_md and error in placeholder.doc_md
    (task,) = placeholder.tasks
    with pytest.raises(MetaflowAirflowError) as failed:
        task.execute({})
    assert str(failed.value).startswith(f"{url}: {error}")
    assert [r.levelno for r in warnings_logged] == [logging.ERROR]
    assert url in warnings_logged[0].getMessage() and error in warnings_logged[0].getMessage()

    # The error is remembered: the next parse does not read the manifest again, same outcome.
    again = load_dags(settings=settings(store, tmp_path))
    assert again["bad"].doc_md == placeholder.doc_md


@pytest.mark.parametrize(("blob", "error"), BAD_MANIFESTS)
def test_a_bad_update_keeps_the_last_good_version(
    blob: bytes, error: str, tmp_path: Path, warnings_logged: list[logging.LogRecord]
) -> None:
    store = file_store(tmp_path)
    good = make_manifest("bad", description="The last good one.")
    store.write(good)
    store.write(make_manifest("other"))
    config = settings(store, tmp_path)
    load_dags(settings=config)

    put_raw(store, "bad", blob)
    dags = load_dags(settings=config)

    assert sorted(dags) == ["bad", "other"]
    assert dags["bad"].description == "The last good one."
    assert ERROR_TAG not in dags["bad"].tags
    url = f"{store.url}/manifests/bad.json"
    assert dags["bad"].doc_md.startswith(f"> **Warning:** the current manifest `{url}` is invalid")
    assert error in dags["bad"].doc_md
    (warning,) = warnings_logged
    assert warning.levelno == logging.WARNING
    assert url in warning.getMessage() and error in warning.getMessage()
    assert "keeps running its last valid manifest" in warning.getMessage()

    store.write(make_manifest("bad", description="Fixed."))  # a good publish clears the warning
    fixed = load_dags(settings=config)["bad"]
    assert fixed.description == "Fixed." and "Warning" not in (fixed.doc_md or "")


@pytest.mark.parametrize(("blob", "error"), BAD_MANIFESTS)
def test_strict_mode_raises_on_a_bad_manifest(blob: bytes, error: str, tmp_path: Path) -> None:
    store = file_store(tmp_path)
    store.write(make_manifest("good"))
    put_raw(store, "bad", blob)
    url = f"{store.url}/manifests/bad.json"

    for _ in range(2):  # the second parse raises from the cached error
        with pytest.raises(ManifestError) as raised:
            load_dags(settings=settings(store, tmp_path, strict=True))
        assert str(raised.value).startswith(f"{url}: {error}")


def test_a_bad_manifest_in_airflow_is_a_dag_not_an_import_error(
    dagbag, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = file_store(tmp_path)
    store.write(make_manifest("good"))
    put_raw(store, "bad", b'{"truncated": ')
    monkeypatch.setenv("METAFLOW_AIRFLOW_CACHE_DIR", str(tmp_path / "cache"))

    bag = dagbag(store.url)

    assert bag.import_errors == {}
    assert sorted(bag.dag_ids) == ["bad", "good"]
    assert "Invalid JSON" in bag.get_dag("bad").doc_md


# --- signed manifests -------------------------------------------------------------------------


def test_require_signed_builds_only_signed_manifests(tmp_path: Path) -> None:
    store = file_store(tmp_path)
    store.write(make_manifest("signed"), signing_key=KEY.encode())
    store.write(make_manifest("tampered"), signing_key=KEY.encode())
    store.write(make_manifest("unsigned"))
    config = settings(store, tmp_path, require_signed=True, signing_key=KEY)
    loaded = load_dags(settings=config)
    assert sorted(d for d, dag in loaded.items() if ERROR_TAG not in dag.tags) == [
        "signed",
        "tampered",
    ]

    changed = make_manifest("tampered", description="Not what was signed.").to_json().encode()
    put_raw(store, "tampered", changed)
    dags = load_dags(settings=config)

    assert ERROR_TAG not in dags["signed"].tags
    assert dags["tampered"].description == "A flow."  # the last good (signed) one
    assert "signature does not match" in dags["tampered"].doc_md
    assert ERROR_TAG in dags["unsigned"].tags and "unsigned" in dags["unsigned"].doc_md
    assert sign(changed, KEY.encode()) not in dags["tampered"].doc_md


# --- what a parse keeps in memory ---------------------------------------------------------------


def _parsed_manifests(dag_ids: set[str]) -> list[HashedManifest]:
    gc.collect()  # type(), not isinstance(): Airflow 2 has objects whose __class__ imports
    return [o for o in gc.get_objects() if type(o) is HashedManifest and o.dag_id in dag_ids]


def test_a_full_parse_keeps_no_parsed_manifest(tmp_path: Path) -> None:
    store = file_store(tmp_path)
    for dag_id in ("a", "b"):
        store.write(make_manifest(dag_id))
    config = settings(store, tmp_path)

    for parse in ("cold", "warm"):
        dags = load_dags(settings=config)
        assert _parsed_manifests({"a", "b"}) == [], parse
        task = dags["b"].get_task("start")  # a task that runs after all reads it back
        assert (task.manifest.dag_id, task.step.name) == ("b", "start")
        assert [m.dag_id for m in _parsed_manifests({"a", "b"})] == ["b"]
        del dags, task


def test_a_task_parse_keeps_its_manifest_and_a_full_parse_reads_it_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = file_store(tmp_path)
    store.write(make_manifest("a"))
    config = settings(store, tmp_path)
    full_parse = load_dags(settings=config)["a"]
    monkeypatch.setenv(PARSING_CONTEXT, "a")
    task_parse = load_dags(settings=config)["a"]

    for blob in (tmp_path / "cache").rglob("*/*.json"):  # blobs/ and retired/: long gone
        blob.unlink()

    assert task_parse.get_task("end").step.name == "end"
    with pytest.raises(ManifestError, match="DAG a was built from is no longer in the loader"):
        _ = full_parse.get_task("end").manifest


def test_a_dag_built_before_a_newer_parse_still_runs_what_it_was_built_from(
    tmp_path: Path,
) -> None:
    """A long-lived process (``dag.test()`` after a parse, a notebook, the demo) may run a DAG
    after a newer parse replaced its manifest in the cache: the replaced one stays a day."""
    store = file_store(tmp_path)
    store.write(make_manifest("a", description="First."))
    config = settings(store, tmp_path)
    first = load_dags(settings=config)["a"]
    store.write(make_manifest("a", description="Second."))
    second = load_dags(settings=config)["a"]

    assert first.get_task("end").manifest.description == "First."
    assert second.get_task("end").manifest.description == "Second."

    first = load_dags(settings=config)["a"]  # built from the second version too
    store.write(make_manifest("a", description="Third."))
    for blob in (tmp_path / "cache").rglob("retired/*.json"):  # retired two days ago
        os.utime(blob, (time.time() - 2 * 86400,) * 2)
    load_dags(settings=config)  # retires the second, removes the first
    assert first.get_task("end").manifest.description == "Second."
    assert len(list((tmp_path / "cache").rglob("retired/*.json"))) == 1


# --- parsing-context fast path ----------------------------------------------------------------


def test_a_task_parse_builds_one_dag_with_at_most_one_request(
    moto: MotoServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = s3_store(moto)
    for dag_id in ("a", "b", "c"):
        store.write(make_manifest(dag_id))
    monkeypatch.setenv(PARSING_CONTEXT, "b")

    moto.record()  # cold cache: one read of that manifest, no listing
    assert list(load_dags(settings=settings(store, tmp_path))) == ["b"]
    assert requests_by_kind(moto) == {"list": [], "read": ["b.json"], "other": []}

    moto.record()  # checked just now: no request at all
    assert list(load_dags(settings=settings(store, tmp_path))) == ["b"]
    assert moto.requests() == []

    store.write(make_manifest("b", description="changed"))
    moto.record()  # too old for cache_fresh_seconds=0: one read, and the change is seen
    dags = load_dags(settings=settings(store, tmp_path, cache_fresh_seconds=0))
    assert dags["b"].description == "changed"
    assert requests_by_kind(moto) == {"list": [], "read": ["b.json"], "other": []}

    moto.stop()  # store down: the cached DAG still builds
    assert list(load_dags(settings=settings(store, tmp_path, store_timeout_seconds=2))) == ["b"]
    monkeypatch.setenv(PARSING_CONTEXT, "deleted-or-unknown")
    assert load_dags(settings=settings(store, tmp_path, store_timeout_seconds=2)) == {}


def test_a_task_parse_after_a_full_parse_needs_no_request(
    moto: MotoServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = s3_store(moto)
    store.write(make_manifest("a"))
    store.write(make_manifest("b"))
    load_dags(settings=settings(store, tmp_path))

    monkeypatch.setenv(PARSING_CONTEXT, "a")
    moto.record()
    assert list(load_dags(settings=settings(store, tmp_path))) == ["a"]
    assert moto.requests() == []


def test_a_store_that_stalls_after_the_listing_keeps_what_was_read(
    moto: MotoServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    warnings_logged: list[logging.LogRecord],
) -> None:
    """A cold cache and a store that freezes after the first batch of reads: the DAGs read in
    time load and are cached; the next parse reads only the rest."""
    import metaflow_airflow.airflow.loader.fetcher as fetcher

    store = s3_store(moto)
    dag_ids = [f"flow_{i}" for i in range(6)]
    for dag_id in dag_ids:
        store.write(make_manifest(dag_id))
    monkeypatch.setattr(fetcher, "READ_BATCH", 2)
    read_raw_many = ManifestStore.read_raw_many
    batches = 0

    def first_batch_then_freeze(self: ManifestStore, *args: Any, **kwargs: Any) -> Any:
        nonlocal batches
        blobs = read_raw_many(self, *args, **kwargs)
        batches += 1
        if batches == 1:
            moto.freeze()  # the server keeps its port and answers nothing more
        return blobs

    monkeypatch.setattr(ManifestStore, "read_raw_many", first_batch_then_freeze)
    first = load_dags(settings=settings(store, tmp_path, store_timeout_seconds=3))

    assert sorted(first) == dag_ids[:2]
    (warning,) = warnings_logged
    assert "4 changed or new manifest(s) are read on the next parse" in warning.getMessage()

    monkeypatch.setattr(ManifestStore, "read_raw_many", read_raw_many)
    moto.thaw()
    moto.record()
    assert sorted(load_dags(settings=settings(store, tmp_path))) == dag_ids
    # (the first parse's store thread may still finish its reads meanwhile)
    assert set(requests_by_kind(moto)["read"]) == {f"{d}.json" for d in dag_ids[2:]}
