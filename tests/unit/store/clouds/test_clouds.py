"""Each cloud module behind the one interface: which cloud a protocol, URL, file system or
Metaflow datastore is; the change markers the loader compares (from listing entries shaped as
s3fs, adlfs, gcsfs and fsspec's local file system return them); the local folder's conditional
writes and lock on a real folder; the conflict each cloud's conditional write reports; and the
Metaflow configuration a task gets at publish and reads back on the worker."""

from __future__ import annotations

import inspect
import os
import subprocess
import sys
import threading
import time
import typing
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import adlfs
import gcsfs
import pytest
import s3fs
from azure.core import MatchConditions
from azure.core.exceptions import ResourceExistsError, ResourceModifiedError
from azure.storage.blob import ContentSettings
from botocore.exceptions import ClientError
from fsspec.implementations.local import LocalFileSystem
from fsspec.implementations.memory import MemoryFileSystem
from s3fs.errors import translate_boto_error

import metaflow_airflow
from metaflow_airflow.manifest.models import MetaflowRuntime
from metaflow_airflow.store.clouds.azure import AzureCloud
from metaflow_airflow.store.clouds.base import Cloud, WriteConflict
from metaflow_airflow.store.clouds.gcs import GcsCloud
from metaflow_airflow.store.clouds.local import LocalCloud
from metaflow_airflow.store.clouds.registry import (
    CLOUDS,
    OTHER,
    cloud_for_datastore,
    cloud_for_protocol,
    cloud_for_url,
    cloud_of,
)
from metaflow_airflow.store.clouds.s3 import S3Cloud, parse_timestamp

WHEN = datetime(2026, 11, 22, 10, 42, 39, tzinfo=timezone.utc)
LATER = WHEN + timedelta(seconds=5)

# --- listing entries, as each client returns them from ls(detail=True) ------------------------


def s3_entry(etag: str = '"9b2cf535f27731c974343645a3985328"', **changes: Any) -> dict[str, Any]:
    """s3fs: a ListObjectsV2 ``Contents`` item as botocore parses it, plus s3fs's ``_fill_info``
    (``size``, ``name``, ``Key`` with the bucket, ``type``)."""
    entry = {
        "Key": "bucket/flows/manifests/F.json",
        "LastModified": WHEN,
        "ETag": etag,
        "ChecksumAlgorithm": ["CRC64NVME"],
        "ChecksumType": "FULL_OBJECT",
        "Size": 2417,
        "StorageClass": "STANDARD",
        "type": "file",
        "size": 2417,
        "name": "bucket/flows/manifests/F.json",
    }
    return {**entry, **changes}


def azure_entry(etag: str = '"0x8DD0A1B2C3D4E5F"', **changes: Any) -> dict[str, Any]:
    """adlfs ``_details``: the forwarded BlobProperties (lower-case ``etag``, normalized to one
    pair of quotes), then ``name``, ``size`` and ``type``."""
    entry = {
        "metadata": {},
        "creation_time": WHEN,
        "deleted": None,
        "deleted_time": None,
        "last_modified": WHEN,
        "content_settings": ContentSettings(content_type="application/json"),
        "remaining_retention_days": None,
        "archive_status": None,
        "last_accessed_on": None,
        "etag": etag,
        "tags": None,
        "tag_count": None,
        "name": "container/flows/manifests/F.json",
        "size": 2417,
        "type": "file",
    }
    return {**entry, **changes}


def gcs_entry(
    generation: str = "1763808159123456",
    md5: str = "myg4jkhrSeo4DdTp3Al7Hg==",
    etag: str = "CMCs5Nnv3JADEAE=",
    **changes: Any,
) -> dict[str, Any]:
    """gcsfs ``_process_object``: the JSON API object resource (strings for numbers), with
    ``size`` as int, ``name`` with the bucket, ``type``, ``mtime``/``ctime`` and
    ``generation``/``metageneration``."""
    entry = {
        "kind": "storage#object",
        "id": f"bucket/flows/manifests/F.json/{generation}",
        "selfLink": "https://www.googleapis.com/storage/v1/b/bucket/o/flows%2Fmanifests%2FF.json",
        "mediaLink": "https://storage.googleapis.com/download/storage/v1/b/bucket/o/"
        f"flows%2Fmanifests%2FF.json?generation={generation}&alt=media",
        "name": "bucket/flows/manifests/F.json",
        "bucket": "bucket",
        "generation": generation,
        "metageneration": "1",
        "contentType": "application/json",
        "storageClass": "STANDARD",
        "size": 2417,
        "md5Hash": md5,
        "crc32c": "yZRlqg==",
        "etag": etag,
        "timeCreated": "2026-11-22T10:42:39.123Z",
        "updated": "2026-11-22T10:42:39.123Z",
        "timeStorageClassUpdated": "2026-11-22T10:42:39.123Z",
        "type": "file",
        "mtime": WHEN,
        "ctime": WHEN,
    }
    return {**entry, **changes}


def local_entry(path: Path) -> dict[str, Any]:
    """fsspec's LocalFileSystem, for real."""
    (entry,) = LocalFileSystem().ls(str(path), detail=True)
    return entry


# --- the registry -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("protocol", "cloud"),
    [
        ("s3", S3Cloud),
        ("s3a", S3Cloud),
        ("az", AzureCloud),
        ("abfs", AzureCloud),
        ("abfss", AzureCloud),
        ("gs", GcsCloud),
        ("gcs", GcsCloud),
        ("file", LocalCloud),
        ("local", LocalCloud),
    ],
)
def test_each_protocol_has_its_cloud(protocol: str, cloud: type[Cloud]) -> None:
    assert type(cloud_for_protocol(protocol)) is cloud


@pytest.mark.parametrize("protocol", ["memory", "sftp", "hdfs", "http", "S3", ""])
def test_any_other_protocol_is_the_generic_cloud(protocol: str) -> None:
    """A file system no module describes still works, with plain fsspec calls."""
    assert cloud_for_protocol(protocol) is OTHER
    assert type(OTHER) is Cloud


@pytest.mark.parametrize(
    ("url", "cloud"),
    [
        ("s3://bucket/flows", S3Cloud),
        ("s3a://bucket/flows", S3Cloud),
        ("az://container/flows", AzureCloud),
        ("abfs://container/flows", AzureCloud),
        ("abfss://container@account.dfs.core.windows.net/flows", AzureCloud),
        ("gs://bucket/flows", GcsCloud),
        ("gcs://bucket/flows", GcsCloud),
        ("file:///srv/flows", LocalCloud),
        ("local:///srv/flows", LocalCloud),
        ("/srv/flows", LocalCloud),  # no scheme: a folder
        ("flows", LocalCloud),
        ("memory://flows", Cloud),
        ("sftp://host/srv/flows", Cloud),
    ],
)
def test_a_store_url_has_the_cloud_of_its_scheme(url: str, cloud: type[Cloud]) -> None:
    assert type(cloud_for_url(url)) is cloud


@pytest.mark.parametrize(
    ("fs", "cloud"),
    [
        (s3fs.S3FileSystem(anon=True, skip_instance_cache=True), S3Cloud),
        (adlfs.AzureBlobFileSystem(account_name="account", anon=True, skip_instance_cache=True),
         AzureCloud),
        (gcsfs.GCSFileSystem(token="anon", skip_instance_cache=True), GcsCloud),
        (LocalFileSystem(), LocalCloud),
        (MemoryFileSystem(), Cloud),  # a protocol that is one string, not a tuple
    ],
    ids=["s3fs", "adlfs", "gcsfs", "local", "memory"],
)
def test_a_file_system_object_has_the_cloud_of_its_protocols(fs: Any, cloud: type[Cloud]) -> None:
    """The store opens a file system and asks what it is: by the protocols its class
    declares, whichever of them the URL used."""
    assert type(cloud_of(fs)) is cloud


@pytest.mark.parametrize(
    ("datastore", "cloud"),
    [("local", LocalCloud), ("s3", S3Cloud), ("azure", AzureCloud), ("gs", GcsCloud)],
)
def test_each_metaflow_datastore_has_its_cloud(datastore: str, cloud: type[Cloud]) -> None:
    assert type(cloud_for_datastore(datastore)) is cloud


def test_every_datastore_a_manifest_may_name_has_a_cloud() -> None:
    """A datastore the manifest model admits but no cloud serves would publish a flow whose
    tasks get no datastore configuration."""
    names = typing.get_args(typing.get_type_hints(MetaflowRuntime)["datastore"])
    assert names and all(cloud_for_datastore(name) is not OTHER for name in names)
    assert cloud_for_datastore("hdfs") is OTHER


def test_no_protocol_belongs_to_two_clouds() -> None:
    """The registry takes the first match: a protocol claimed twice would silently be the
    first cloud's."""
    claimed = [p for cloud in CLOUDS for p in cloud.protocols]
    assert len(claimed) == len(set(claimed))
    assert len({cloud.name for cloud in CLOUDS}) == len(CLOUDS)


@pytest.mark.parametrize(
    ("cloud", "scheme", "provider"),
    [
        (S3Cloud(), "s3", "apache-airflow-providers-amazon"),
        (AzureCloud(), "abfs", "apache-airflow-providers-microsoft-azure"),
        (GcsCloud(), "gs", "apache-airflow-providers-google"),
        (LocalCloud(), None, None),
        (OTHER, None, None),
    ],
    ids=["s3", "azure", "gcs", "local", "other"],
)
def test_the_airflow_side_of_each_cloud(
    cloud: Cloud, scheme: str | None, provider: str | None
) -> None:
    """Azure's provider registers only ``abfs`` (not ``az``), so that is the scheme an Airflow
    connection opens; a scheme is always one of the cloud's own protocols."""
    assert (cloud.connection_scheme, cloud.airflow_provider) == (scheme, provider)
    assert scheme is None or scheme in cloud.protocols


# --- change markers ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cloud", "entry", "content_changes"),
    [
        (S3Cloud(), s3_entry, [{"ETag": '"0f343b0931126a20f133d67c2b018a3b"'}]),
        (AzureCloud(), azure_entry, [{"etag": '"0x8DD0A1B2C3D4E60"'}]),
        (
            GcsCloud(),
            gcs_entry,
            [{"generation": "1763808164000001"}, {"md5Hash": "1B2M2Y8AsgTpgAmY7PhCfg=="},
             {"etag": "CMCs5Nnv3JADEAI="}],
        ),
    ],
    ids=["s3", "azure", "gcs"],
)
def test_a_marker_changes_with_the_content_key_and_only_with_it(
    cloud: Cloud, entry: Any, content_changes: list[dict[str, Any]]
) -> None:
    """The loader re-reads a manifest when its marker changes: it must change on every new
    content (else a publish is missed) and not on a listing's other fields (else every parse
    re-reads every manifest)."""
    before = cloud.marker(entry())
    for change in content_changes:
        assert cloud.marker(entry(**change)) != before, change
    same_content = {
        "S3Cloud": {"LastModified": LATER, "StorageClass": "STANDARD_IA", "ChecksumType": "X"},
        "AzureCloud": {"last_modified": LATER, "creation_time": LATER, "last_accessed_on": LATER},
        "GcsCloud": {"updated": "2026-11-22T10:42:44Z", "mtime": LATER, "crc32c": "AAAAAA=="},
    }[type(cloud).__name__]
    assert cloud.marker(entry(**same_content)) == before
    assert cloud.marker(entry()) == before  # the same listing again


@pytest.mark.parametrize(
    ("cloud", "entry"),
    [(S3Cloud(), s3_entry), (AzureCloud(), azure_entry), (GcsCloud(), gcs_entry)],
    ids=["s3", "azure", "gcs"],
)
def test_a_marker_includes_the_size(cloud: Cloud, entry: Any) -> None:
    assert cloud.marker(entry(size=1)) != cloud.marker(entry(size=2))


def test_each_cloud_reads_the_content_key_its_client_spells() -> None:
    """s3fs says ``ETag``, adlfs ``etag``: a cloud reading the other spelling would fall back
    to times, and miss a publish within the listing's time resolution."""
    assert S3Cloud().marker(s3_entry()).startswith('"9b2cf535f27731c974343645a3985328"')
    assert AzureCloud().marker(azure_entry()).startswith('"0x8DD0A1B2C3D4E5F"')
    assert GcsCloud().marker(gcs_entry()) == (
        "CMCs5Nnv3JADEAE=|1763808159123456|myg4jkhrSeo4DdTp3Al7Hg==|2417"
    )


def test_an_s3_entry_without_an_etag_falls_back_to_its_time() -> None:
    """s3fs's ``info`` from a HEAD gives ``"ETag": ""`` when the server sent none."""
    without = s3_entry(etag="")
    assert S3Cloud().marker(without) != S3Cloud().marker({**without, "LastModified": LATER})


def test_the_generic_cloud_uses_any_content_key_it_finds() -> None:
    """A file system no module describes may still list an ETag or a generation."""
    assert OTHER.marker(s3_entry()) == S3Cloud().marker(s3_entry())
    assert OTHER.marker(s3_entry()) == OTHER.marker(s3_entry(LastModified=LATER))
    assert OTHER.marker(azure_entry()) != OTHER.marker(azure_entry(etag='"0x1"'))
    assert OTHER.marker(gcs_entry()) != OTHER.marker(gcs_entry(generation="2"))


@pytest.mark.parametrize(
    ("entry", "key", "later"),
    [
        ({"name": "srv/F.json", "size": 10, "type": "file", "mtime": 1763808159.5}, "mtime",
         1763808160.5),  # sftp, hdfs
        ({"name": "F.json", "size": 10, "type": "file", "LastModified": WHEN}, "LastModified",
         LATER),
        ({"name": "F.json", "size": 10, "type": "file", "last_modified": WHEN}, "last_modified",
         LATER),
    ],
    ids=["mtime", "LastModified", "last_modified"],
)
def test_without_a_content_key_the_generic_marker_is_the_time(
    entry: dict[str, Any], key: str, later: Any
) -> None:
    assert OTHER.marker(entry) != OTHER.marker({**entry, key: later})
    assert OTHER.marker(entry) == OTHER.marker(dict(entry))


@pytest.fixture
def memory_root() -> Iterator[str]:
    """A private folder of fsspec's (process-wide) memory file system."""
    root = f"/test-clouds-{uuid.uuid4().hex}"
    yield root
    fs = MemoryFileSystem()
    if fs.exists(root):
        fs.rm(root, recursive=True)


def test_the_generic_marker_of_a_memory_file_changes_when_it_is_rewritten(
    memory_root: str,
) -> None:
    fs = MemoryFileSystem()
    path = f"{memory_root}/manifests/F.json"
    fs.pipe_file(path, b'{"v": 1}')
    (before,) = fs.ls(f"{memory_root}/manifests", detail=True)
    time.sleep(0.002)
    fs.pipe_file(path, b'{"v": 2}')
    (after,) = fs.ls(f"{memory_root}/manifests", detail=True)
    assert cloud_of(fs).marker(before) != cloud_of(fs).marker(after)


def test_a_local_marker_is_unchanged_until_the_file_is_replaced(tmp_path: Path) -> None:
    path = tmp_path / "F.json"
    LocalCloud().create(LocalFileSystem(), str(path), b'{"v": 1}')
    before = LocalCloud().marker(local_entry(path))
    os.chmod(path, 0o600)  # metadata, not content
    assert LocalCloud().marker(local_entry(path)) == before
    LocalCloud().replace(LocalFileSystem(), str(path), b'{"v": 2}', None)
    assert LocalCloud().marker(local_entry(path)) != before


def test_a_local_replace_within_the_same_mtime_still_changes_the_marker(tmp_path: Path) -> None:
    """File systems with coarse times (or a fast publish) can give the new file the old
    mtime; the rename gives it a new inode, which the marker includes."""
    path = tmp_path / "F.json"
    path.write_bytes(b'{"v": 1}')
    stat = path.stat()
    before = LocalCloud().marker(local_entry(path))
    LocalCloud().replace(LocalFileSystem(), str(path), b'{"v": 2}', None)
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    after = local_entry(path)
    assert after["mtime"] == stat.st_mtime and after["size"] == stat.st_size
    assert LocalCloud().marker(after) != before


def test_the_change_tag_is_the_etag_each_client_spells() -> None:
    assert S3Cloud().change_tag(s3_entry()) == '"9b2cf535f27731c974343645a3985328"'
    assert AzureCloud().change_tag(azure_entry()) == '"0x8DD0A1B2C3D4E5F"'
    assert GcsCloud().change_tag(gcs_entry()) == "CMCs5Nnv3JADEAE="


def test_an_existing_object_always_has_a_change_tag(tmp_path: Path) -> None:
    """``None`` means "does not exist" to replace(): without an ETag, the marker stands in
    (the local store serializes with its lock anyway)."""
    path = tmp_path / "F.json"
    path.write_bytes(b"{}")
    entry = local_entry(path)
    assert LocalCloud().change_tag(entry) == LocalCloud().marker(entry)


# --- the local folder: conditional writes and the lock, on a real folder ----------------------


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp"))


def test_local_create_writes_a_new_file_in_a_new_folder(tmp_path: Path) -> None:
    path = tmp_path / "versions" / "F" / "v1.json"
    LocalCloud().create(LocalFileSystem(), str(path), b"one")
    assert path.read_bytes() == b"one"
    assert leftovers(path.parent) == []


def test_local_create_refuses_an_existing_name(tmp_path: Path) -> None:
    """A version is written once: a second create of its name must fail and change nothing."""
    path = tmp_path / "v1.json"
    LocalCloud().create(LocalFileSystem(), str(path), b"one")
    with pytest.raises(FileExistsError):
        LocalCloud().create(LocalFileSystem(), str(path), b"two")
    assert path.read_bytes() == b"one"
    assert leftovers(tmp_path) == []


def race_to_create(path: Path, writers: int) -> tuple[list[bytes], list[BaseException]]:
    """``writers`` threads create ``path`` at once, each with its own bytes."""
    start = threading.Barrier(writers)
    won: list[bytes] = []
    lost: list[BaseException] = []

    def create(data: bytes) -> None:
        start.wait()
        try:
            LocalCloud().create(LocalFileSystem(), str(path), data)
            won.append(data)
        except FileExistsError as exc:
            lost.append(exc)

    threads = [threading.Thread(target=create, args=(bytes([65 + i]) * 100_000,))
               for i in range(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return won, lost


def test_of_concurrent_local_creates_of_one_name_exactly_one_wins(tmp_path: Path) -> None:
    """Check-then-write would let two publishers both "create" a version."""
    for attempt in range(5):
        path = tmp_path / f"v{attempt}.json"
        won, lost = race_to_create(path, 6)
        assert len(won) == 1 and len(lost) == 5
        assert path.read_bytes() == won[0]
    assert leftovers(tmp_path) == []


def test_local_replace_creates_or_replaces_and_leaves_no_temporary_file(tmp_path: Path) -> None:
    path = tmp_path / "manifests" / "F.json"
    LocalCloud().replace(LocalFileSystem(), str(path), b"one", None)
    assert path.read_bytes() == b"one"
    LocalCloud().replace(LocalFileSystem(), str(path), b"two", "ignored")
    assert path.read_bytes() == b"two"
    assert leftovers(path.parent) == []


def test_local_replace_is_atomic_for_readers(tmp_path: Path) -> None:
    """The loader reads the current manifest while a publish replaces it: it must see the old
    bytes or the new ones, never an empty or half-written file."""
    path = tmp_path / "F.json"
    payloads = (b"a" * 2_000_000, b"b" * 2_000_000)
    path.write_bytes(payloads[0])
    done = threading.Event()
    seen: set[bytes] = set()

    def read() -> None:
        while not done.is_set():
            data = path.read_bytes()
            if data not in payloads:
                seen.add(data[:20] + b"...%d bytes" % len(data))

    reader = threading.Thread(target=read)
    reader.start()
    try:
        for i in range(60):
            LocalCloud().replace(LocalFileSystem(), str(path), payloads[(i + 1) % 2], None)
    finally:
        done.set()
        reader.join()
    assert seen == set()
    assert leftovers(tmp_path) == []


def test_local_pointer_lock_serializes_threads(tmp_path: Path) -> None:
    """Read, decide, write under the lock (as a pointer move does) loses no update."""
    folder, counter = tmp_path / "versions" / "F", tmp_path / "counter"
    counter.write_text("0")

    def increment() -> None:
        for _ in range(5):
            with LocalCloud().pointer_lock(str(folder)):
                value = int(counter.read_text())
                time.sleep(0.002)
                counter.write_text(str(value + 1))

    threads = [threading.Thread(target=increment) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert counter.read_text() == "20"
    assert folder.is_dir()  # the lock creates the folder it is held on


CHILD = """
import pathlib, sys
from metaflow_airflow.store.clouds.local import LocalCloud
folder, ready, acquired = sys.argv[1:]
pathlib.Path(ready).touch()
with LocalCloud().pointer_lock(folder):
    pathlib.Path(acquired).touch()
"""


def test_local_pointer_lock_serializes_processes(tmp_path: Path) -> None:
    """Two publishes are two processes: the second waits until the first lets go."""
    folder, ready, acquired = tmp_path / "versions" / "F", tmp_path / "ready", tmp_path / "acq"
    package_root = Path(metaflow_airflow.__file__).resolve().parent.parent
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(package_root),
                                                         os.environ.get("PYTHONPATH", "")])}
    with LocalCloud().pointer_lock(str(folder)):
        child = subprocess.Popen(
            [sys.executable, "-c", CHILD, str(folder), str(ready), str(acquired)], env=env
        )
        try:
            deadline = time.monotonic() + 30
            while not ready.exists() and child.poll() is None and time.monotonic() < deadline:
                time.sleep(0.01)
            assert ready.exists(), "the child process did not start"
            time.sleep(0.3)
            assert not acquired.exists(), "the child took the lock the parent holds"
        except BaseException:
            child.kill()
            raise
    assert child.wait(timeout=30) == 0
    assert acquired.exists()


def test_local_pointer_lock_is_released_when_the_body_fails(tmp_path: Path) -> None:
    folder = str(tmp_path / "versions" / "F")
    with pytest.raises(RuntimeError), LocalCloud().pointer_lock(folder):
        raise RuntimeError("write failed")
    taken = threading.Event()

    def take() -> None:
        with LocalCloud().pointer_lock(folder):
            taken.set()

    thread = threading.Thread(target=take, daemon=True)
    thread.start()
    assert taken.wait(timeout=10), "the lock stayed held after the failure"


@pytest.mark.parametrize("cloud", [S3Cloud(), AzureCloud(), GcsCloud(), OTHER],
                         ids=["s3", "azure", "gcs", "other"])
def test_object_stores_take_no_local_lock(cloud: Cloud, tmp_path: Path) -> None:
    """Their conditional writes (or last writer wins) do it; a local lock would serialize
    nothing between machines and only create folders here."""
    with cloud.pointer_lock(str(tmp_path / "nowhere")):
        pass
    assert not (tmp_path / "nowhere").exists()


# --- conditional writes of the object stores --------------------------------------------------


class RecordingFs:
    """Records ``pipe_file`` calls; raises ``error`` if given (errors are the real clients')."""

    def __init__(self, error: BaseException | None = None) -> None:
        self.calls: list[tuple[str, bytes, dict[str, Any]]] = []
        self.error = error

    def pipe_file(self, path: str, data: bytes, **kwargs: Any) -> None:
        self.calls.append((path, data, kwargs))
        if self.error is not None:
            raise self.error


def s3_error(code: str, condition: str | None = None) -> ClientError:
    error: dict[str, Any] = {"Code": code, "Message": f"{code} message"}
    if condition:
        error["Condition"] = condition
    return ClientError({"Error": error, "ResponseMetadata": {"HTTPStatusCode": 412}}, "PutObject")


def test_s3_replace_is_conditional_on_the_etag() -> None:
    fs = RecordingFs()
    S3Cloud().replace(fs, "bucket/F.json", b"new", '"etag"')
    assert fs.calls == [("bucket/F.json", b"new", {"IfMatch": '"etag"'})]


@pytest.mark.parametrize(
    "error",
    [
        s3_error("PreconditionFailed"),
        translate_boto_error(s3_error("PreconditionFailed", "If-Match")),
        s3_error("ConditionalRequestConflict"),
        translate_boto_error(s3_error("ConditionalRequestConflict")),
    ],
    ids=["412", "412-via-s3fs", "409", "409-via-s3fs"],
)
def test_s3_replace_that_loses_is_a_write_conflict(error: BaseException) -> None:
    """s3fs raises botocore's error or its own translation (the original as ``__cause__``)."""
    with pytest.raises(WriteConflict):
        S3Cloud().replace(RecordingFs(error), "bucket/F.json", b"new", '"etag"')


@pytest.mark.parametrize(
    "error",
    [translate_boto_error(s3_error("AccessDenied")), s3_error("SlowDown"), OSError("reset")],
    ids=["denied", "slow-down", "network"],
)
def test_s3_replace_keeps_any_other_error(error: BaseException) -> None:
    """Only a lost race is retried; anything else is the operator's to see."""
    with pytest.raises(type(error)) as raised:
        S3Cloud().replace(RecordingFs(error), "bucket/F.json", b"new", '"etag"')
    assert raised.value is error


def test_s3_replace_of_a_missing_object_is_a_create() -> None:
    """No tag: the pointer did not exist, and must still not exist when written."""
    fs = RecordingFs()
    S3Cloud().replace(fs, "bucket/F.json", b"new", None)
    assert fs.calls == [("bucket/F.json", b"new", {"mode": "create"})]
    created = translate_boto_error(s3_error("PreconditionFailed", "If-None-Match"))
    assert isinstance(created, FileExistsError)
    with pytest.raises(WriteConflict):
        S3Cloud().replace(RecordingFs(created), "bucket/F.json", b"new", None)


def test_azure_replace_is_conditional_on_the_etag() -> None:
    fs = RecordingFs()
    AzureCloud().replace(fs, "container/F.json", b"new", '"0x8D"')
    assert fs.calls == [
        ("container/F.json", b"new",
         {"etag": '"0x8D"', "match_condition": MatchConditions.IfNotModified}),
    ]


def azure_error(kind: type[Exception], status: int) -> Exception:
    error = kind("The condition specified using HTTP conditional header(s) is not met.")
    error.status_code = status  # type: ignore[attr-defined]  # as from a response
    return error


def wrapped(error: Exception) -> Exception:
    """An OSError caused by ``error``, as adlfs re-raises some SDK errors."""
    outer = OSError(str(error))
    outer.__cause__ = error
    return outer


@pytest.mark.parametrize(
    "error",
    [
        azure_error(ResourceModifiedError, 412),
        azure_error(ResourceExistsError, 409),
        wrapped(azure_error(ResourceModifiedError, 412)),
    ],
    ids=["412", "409", "412-wrapped"],
)
def test_azure_replace_that_loses_is_a_write_conflict(error: Exception) -> None:
    with pytest.raises(WriteConflict):
        AzureCloud().replace(RecordingFs(error), "container/F.json", b"new", '"0x8D"')


@pytest.mark.parametrize(
    "error", [azure_error(ResourceModifiedError, 403), OSError("reset")], ids=["403", "network"]
)
def test_azure_replace_keeps_any_other_error(error: Exception) -> None:
    with pytest.raises(type(error)) as raised:
        AzureCloud().replace(RecordingFs(error), "container/F.json", b"new", '"0x8D"')
    assert raised.value is error


def test_gcs_replace_is_last_writer_wins() -> None:
    """gcsfs has no conditional overwrite: the write goes through unconditionally."""
    fs = RecordingFs()
    GcsCloud().replace(fs, "bucket/F.json", b"new", "CMCs5Nnv3JADEAE=")
    assert fs.calls == [("bucket/F.json", b"new", {})]


def test_the_generic_cloud_on_a_real_memory_file_system(memory_root: str) -> None:
    """create refuses an existing name; replace without a tag only creates; with a tag the
    last writer wins."""
    fs, path = MemoryFileSystem(), f"{memory_root}/F.json"
    OTHER.create(fs, path, b"one")
    with pytest.raises(FileExistsError):
        OTHER.create(fs, path, b"two")
    with pytest.raises(WriteConflict):
        OTHER.replace(fs, path, b"two", None)
    assert fs.cat_file(path) == b"one"
    OTHER.replace(fs, path, b"three", "any")
    assert fs.cat_file(path) == b"three"
    OTHER.replace(fs, f"{memory_root}/G.json", b"new", None)
    assert fs.cat_file(f"{memory_root}/G.json") == b"new"
    assert OTHER.read_options(fs) == {}


@pytest.mark.parametrize(
    "where",
    [
        "local",
        "memory",
    ],
)
def test_an_object_is_replaced_with_the_tag_its_own_info_gives(
    where: str, tmp_path: Path, memory_root: str
) -> None:
    """What a pointer move does: read the tag, then replace conditionally. With nobody else
    writing in between it must succeed, on every cloud."""
    if where == "local":
        fs: Any = LocalFileSystem()
        path = str(tmp_path / "F.json")
    else:
        fs, path = MemoryFileSystem(), f"{memory_root}/F.json"
    cloud = cloud_of(fs)
    cloud.create(fs, path, b"one")
    cloud.replace(fs, path, b"two", cloud.change_tag(fs.info(path)))
    assert fs.cat_file(path) == b"two"


# --- the S3 client ----------------------------------------------------------------------------


def test_s3_reads_ask_for_one_request_where_s3fs_knows_how() -> None:
    """Without ``max_concurrency=1`` s3fs sends a HEAD before each GET."""
    fs = s3fs.S3FileSystem(anon=True, skip_instance_cache=True)
    knows = "max_concurrency" in inspect.signature(s3fs.S3FileSystem._cat_file).parameters
    assert S3Cloud().read_options(fs) == ({"max_concurrency": 1} if knows else {})

    class OldS3FileSystem(s3fs.S3FileSystem):
        async def _cat_file(self, path, version_id=None, start=None, end=None):  # type: ignore[override]
            raise AssertionError("not called")

    old = OldS3FileSystem(anon=True, skip_instance_cache=True)
    assert S3Cloud().read_options(old) == {}  # an older s3fs rejects the keyword


def test_s3_prepare_installs_the_fast_timestamp_parser() -> None:
    """Set on the client's parser factory before any request, without one."""
    fs = s3fs.S3FileSystem(anon=True, endpoint_url="http://127.0.0.1:9", skip_instance_cache=True)
    S3Cloud().prepare(fs)
    factory = fs.session.get_component("response_parser_factory")
    assert factory.create_parser("rest-xml")._timestamp_parser is parse_timestamp


# --- a task's Metaflow configuration ----------------------------------------------------------


def metaflow_config(**values: Any) -> SimpleNamespace:
    """Metaflow's configuration module as a task_config reads it (all unset by default)."""
    names = ("DATATOOLS_S3ROOT", "S3_ENDPOINT_URL", "AZURE_STORAGE_BLOB_SERVICE_ENDPOINT",
             "DEFAULT_AZURE_CLIENT_PROVIDER", "DEFAULT_GCP_CLIENT_PROVIDER",
             "DATASTORE_SYSROOT_LOCAL", "CARD_LOCALROOT")
    return SimpleNamespace(**{**dict.fromkeys(names), **values})


class Recording(SimpleNamespace):
    """Remembers which configuration names were read."""

    def __getattribute__(self, name: str) -> Any:
        if not name.startswith("_"):
            object.__getattribute__(self, "_read").add(name)
        return object.__getattribute__(self, name)


def test_every_configuration_name_read_is_metaflows() -> None:
    """A misspelt name would fail only at publish, in the flow process."""
    import metaflow.metaflow_config as real

    config = Recording(**vars(metaflow_config()))
    object.__setattr__(config, "_read", set())
    for cloud in (*CLOUDS, OTHER):
        cloud.task_config("/root", config, {})
    read = object.__getattribute__(config, "_read")
    assert read and all(hasattr(real, name) for name in read), read - set(dir(real))


def test_s3_task_config() -> None:
    config = metaflow_config(DATATOOLS_S3ROOT="s3://b/data", S3_ENDPOINT_URL="http://minio:9000")
    assert S3Cloud().task_config("s3://b/mf", config, {}) == {
        "METAFLOW_DATASTORE_SYSROOT_S3": "s3://b/mf",
        "METAFLOW_DATATOOLS_S3ROOT": "s3://b/data",
        "METAFLOW_S3_ENDPOINT_URL": "http://minio:9000",
    }


def test_azure_task_config() -> None:
    config = metaflow_config(
        AZURE_STORAGE_BLOB_SERVICE_ENDPOINT="https://acct.blob.core.windows.net/",
        DEFAULT_AZURE_CLIENT_PROVIDER="azure-default",
    )
    assert AzureCloud().task_config("container/mf", config, {}) == {
        "METAFLOW_DATASTORE_SYSROOT_AZURE": "container/mf",
        "METAFLOW_AZURE_STORAGE_BLOB_SERVICE_ENDPOINT": "https://acct.blob.core.windows.net/",
        "METAFLOW_DEFAULT_AZURE_CLIENT_PROVIDER": "azure-default",
    }


def test_gcs_task_config_takes_the_emulator_from_the_environment_given(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The publisher's environment is passed in; the process's own is not read behind it."""
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", "http://not-this:1")
    config = metaflow_config(DEFAULT_GCP_CLIENT_PROVIDER="gcp-default")
    expected = {
        "METAFLOW_DATASTORE_SYSROOT_GS": "gs://b/mf",
        "METAFLOW_DEFAULT_GCP_CLIENT_PROVIDER": "gcp-default",
        "STORAGE_EMULATOR_HOST": "http://127.0.0.1:4443",
    }
    environ = {"STORAGE_EMULATOR_HOST": "http://127.0.0.1:4443"}
    assert GcsCloud().task_config("gs://b/mf", config, environ) == expected
    assert GcsCloud().task_config("gs://b/mf", config, {})["STORAGE_EMULATOR_HOST"] is None


def test_local_task_config_defaults_beside_the_datastore_root() -> None:
    """Metaflow's local root is ``<sysroot>/.metaflow``; cards must not go to the task's
    working folder, which local compute deletes."""
    assert LocalCloud().task_config("/data/.metaflow", metaflow_config(), {}) == {
        "METAFLOW_DATASTORE_SYSROOT_LOCAL": "/data",
        "METAFLOW_CARD_LOCALROOT": "/data/.metaflow/mf.cards",
    }


def test_local_task_config_keeps_what_is_configured() -> None:
    config = metaflow_config(DATASTORE_SYSROOT_LOCAL="/sys", CARD_LOCALROOT="/cards")
    assert LocalCloud().task_config("/data/.metaflow", config, {}) == {
        "METAFLOW_DATASTORE_SYSROOT_LOCAL": "/sys",
        "METAFLOW_CARD_LOCALROOT": "/cards",
    }


def test_the_generic_cloud_needs_no_task_config() -> None:
    assert OTHER.task_config("memory://mf", metaflow_config(), {"STORAGE_EMULATOR_HOST": "x"}) == {}


# --- where a worker finds the code package ----------------------------------------------------


def manifest_env(config: dict[str, Any]) -> dict[str, str]:
    """What a manifest keeps of a task config (the publish drops unset values)."""
    return {k: str(v) for k, v in config.items() if v not in (None, "")}


def test_s3_package_location_uses_the_endpoint_published() -> None:
    config = metaflow_config(S3_ENDPOINT_URL="http://127.0.0.1:5000")
    env = manifest_env(S3Cloud().task_config("s3://b/mf", config, {}))
    assert S3Cloud().package_location("s3://b/mf/F/data/ab/abcd", env) == (
        "s3://b/mf/F/data/ab/abcd", {"client_kwargs": {"endpoint_url": "http://127.0.0.1:5000"}}
    )
    assert S3Cloud().package_location("s3://b/p", {}) == ("s3://b/p", {})
    assert S3Cloud().package_location("s3://b/p", {"METAFLOW_S3_ENDPOINT_URL": ""}) == (
        "s3://b/p", {}
    )


@pytest.mark.parametrize(
    ("endpoint", "options"),
    [
        ("https://acct.blob.core.windows.net/",
         {"account_name": "acct", "account_host": "acct.blob.core.windows.net"}),
        ("https://acct.blob.core.windows.net",
         {"account_name": "acct", "account_host": "acct.blob.core.windows.net"}),
        ("http://127.0.0.1:10000/devstoreaccount1",  # azurite, path-style
         {"account_name": "devstoreaccount1", "account_host": "127.0.0.1:10000/devstoreaccount1"}),
    ],
    ids=["account", "account-no-slash", "azurite"],
)
def test_azure_package_location_names_the_account_published(
    endpoint: str, options: dict[str, str]
) -> None:
    """Metaflow's Azure URLs are ``container/blob``: the worker's URL gets the scheme."""
    config = metaflow_config(AZURE_STORAGE_BLOB_SERVICE_ENDPOINT=endpoint)
    env = manifest_env(AzureCloud().task_config("container/mf", config, {}))
    assert AzureCloud().package_location("container/mf/F/data/ab/abcd", env) == (
        "az://container/mf/F/data/ab/abcd", options
    )


def test_azure_package_location_without_an_endpoint_leaves_it_to_the_worker() -> None:
    assert AzureCloud().package_location("container/p", {}) == ("az://container/p", {})


def test_gcs_package_location_reaches_the_emulator_published() -> None:
    environ = {"STORAGE_EMULATOR_HOST": "http://127.0.0.1:4443"}
    env = manifest_env(GcsCloud().task_config("gs://b/mf", metaflow_config(), environ))
    assert GcsCloud().package_location("gs://b/mf/p", env) == (
        "gs://b/mf/p", {"endpoint_url": "http://127.0.0.1:4443", "token": "anon"}
    )
    assert GcsCloud().package_location("gs://b/mf/p", {}) == ("gs://b/mf/p", {})


@pytest.mark.parametrize("cloud", [LocalCloud(), OTHER], ids=["local", "other"])
def test_other_package_locations_are_the_url_itself(cloud: Cloud) -> None:
    env = {"METAFLOW_S3_ENDPOINT_URL": "http://x", "STORAGE_EMULATOR_HOST": "http://y"}
    assert cloud.package_location("/data/.metaflow/F/data/ab/abcd", env) == (
        "/data/.metaflow/F/data/ab/abcd", {}
    )
