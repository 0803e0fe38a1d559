"""The manifest store: versioned JSON manifests in a folder of any fsspec file system.

Layout under the store URL::

    manifests/<dag_id>.json                          the current manifest of each DAG
    versions/<dag_id>/<UTC time>-<sha256[:12]>.json  every published version, never rewritten

A publish first creates its version (create-only), then moves the current pointer by replacing
``manifests/<dag_id>.json`` with the same bytes. The pointer is a full copy, not a reference, so
a loader needs one listing of ``manifests/`` plus one read per changed DAG, and a reader never
sees half a manifest: object stores replace an object in one PUT, and a local folder gets a
temporary file renamed over the old one. Pointer moves are compare-and-swap where the store
enforces it (S3 ``IfMatch``, Azure ``etag``; a file lock on a local folder; last writer wins on
GCS), and a publish never moves the pointer back past a newer version, so concurrent publishes
end with the newest version current. Signatures (``require_signed``) are sidecars
``<manifest>.sig``: a version's is written before the pointer moves, and rollback copies it.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import os
import re
import time
import uuid
from collections.abc import Callable, Mapping
from contextlib import nullcontext
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, TypeVar

import fsspec
from fsspec.implementations.local import LocalFileSystem
from pydantic import ValidationError

from metaflow_airflow.errors import ManifestError, StoreError
from metaflow_airflow.store.locking import folder_lock
from metaflow_airflow.manifest.models import SCHEMA_VERSION, FlowManifest
from metaflow_airflow.store.clouds.s3_timestamps import use_fast_timestamps
from metaflow_airflow.manifest.signing import SIGNATURE_SUFFIX, sign

MANIFESTS_DIR = "manifests"
VERSIONS_DIR = "versions"
SUFFIX = ".json"
_VERSION_TIME = "%Y%m%dT%H%M%S.%fZ"
_VERSION_NAME = re.compile(r"^(\d{8}T\d{6}\.\d{6}Z)-([0-9a-f]{12})$")
_POINTER_ATTEMPTS = 100
_Manifest = TypeVar("_Manifest", bound=FlowManifest)
# Failures of one object rather than of the store.
_OBJECT_ERRORS = (FileNotFoundError, PermissionError)


@dataclass(frozen=True)
class Version:
    """One published version of a DAG's manifest; ``name`` sorts in publish order."""

    name: str
    created_at: datetime
    content_hash: str
    current: bool


class ManifestStore:
    """Publishes, lists and reads flow manifests under one URL."""

    def __init__(self, url: str, storage_options: Mapping[str, Any] | None = None) -> None:
        if not url:
            raise StoreError(
                "no manifest store configured: pass --store or set METAFLOW_AIRFLOW_STORE"
            )
        self.url = url.rstrip("/")
        try:
            self.fs, self.root = fsspec.core.url_to_fs(self.url, **dict(storage_options or {}))
        except (ImportError, ValueError) as exc:
            raise StoreError(f"cannot open manifest store {self.url}: {exc}") from exc
        self.root = self.root.rstrip("/")
        self._local = isinstance(self.fs, LocalFileSystem)
        # s3fs sends a HEAD before each GET (to split big objects into concurrent ranged
        # reads) unless the listing is cached; manifests are small: one GET each.
        self._read_options = _single_get_options(self.fs)
        if _protocols(self.fs) & {"s3", "s3a"}:
            try:
                use_fast_timestamps(self.fs)
            except Exception as exc:  # botocore's errors (a missing profile...) are no OSError
                raise StoreError(f"cannot open manifest store {self.url}: {exc}") from exc

    def connect(self) -> None:
        """Make a first request now: it sets up the store's client (for S3 as slow as importing
        it), which a publish overlaps with the start of its flow process."""
        try:
            self.fs.exists(self.root)
        except OSError as exc:
            raise StoreError(f"cannot reach manifest store {self.url}: {exc}") from exc

    # --- names -------------------------------------------------------------------------------

    def _path(self, dag_id: str) -> str:
        return f"{self.root}/{MANIFESTS_DIR}/{dag_id}{SUFFIX}"

    def _version_dir(self, dag_id: str) -> str:
        return f"{self.root}/{VERSIONS_DIR}/{dag_id}"

    def _version_path(self, dag_id: str, version: str) -> str:
        return f"{self._version_dir(dag_id)}/{version}{SUFFIX}"

    def manifest_url(self, dag_id: str) -> str:
        """The full URL of one manifest, as shown to users and in error messages."""
        return manifest_url(self.url, dag_id)

    def version_url(self, dag_id: str, version: str) -> str:
        """The full URL of one stored version."""
        return f"{self.url}/{VERSIONS_DIR}/{dag_id}/{version}{SUFFIX}"

    # --- publish, roll back, delete ----------------------------------------------------------

    def write(self, manifest: FlowManifest, signing_key: bytes | None = None) -> str:
        """Publish ``manifest``: store it as a new version, then make that version current
        (unless a newer one already is). Returns the current manifest's URL."""
        dag_id = manifest.dag_id
        data = manifest.to_json().encode("utf-8")
        version = f"{datetime.now(timezone.utc).strftime(_VERSION_TIME)}-{_short_hash(data)}"
        signature = _signature(data, signing_key)
        try:
            self._create(self._version_path(dag_id, version), data)
            if signature:
                self._create(self._version_path(dag_id, version) + SIGNATURE_SUFFIX, signature)

            def is_older(current: bytes | None) -> bool:
                shown = self._version_of(dag_id, current)
                return shown is None or shown < version

            self._swap_pointer(dag_id, data, is_older, signature)
        except OSError as exc:
            raise StoreError(f"cannot write {self.manifest_url(dag_id)}: {exc}") from exc
        return self.manifest_url(dag_id)

    def rollback(self, dag_id: str, to: str | None = None) -> Version:
        """Make an earlier version current again: ``to`` (a version name or its hash), by
        default the one before the current version (the newest one after a delete)."""
        versions, before = self._history(dag_id)
        target = _rollback_target(dag_id, versions, to)
        path = self._version_path(dag_id, target.name)
        try:
            data = self.fs.cat_file(path)
            signature = self._read_optional(path + SIGNATURE_SUFFIX)
        except OSError as exc:
            raise StoreError(f"cannot read {self.version_url(dag_id, target.name)}: {exc}") from exc
        parse_manifest(data, self.version_url(dag_id, target.name), dag_id)
        try:
            moved = self._swap_pointer(dag_id, data, lambda now: now == before, signature)
        except OSError as exc:
            raise StoreError(f"cannot write {self.manifest_url(dag_id)}: {exc}") from exc
        if not moved:
            raise StoreError(
                f"{self.manifest_url(dag_id)} changed during the rollback; run it again"
            )
        return Version(target.name, target.created_at, target.content_hash, current=True)

    def delete(self, dag_id: str) -> None:
        """Remove the current manifest: loaders drop the DAG; its history stays for rollback."""
        path = self._path(dag_id)
        with self._pointer_lock(dag_id):
            self._forget(path)
            try:
                if not self.fs.exists(path):  # S3 deletes a missing key without complaint
                    raise StoreError(f"no manifest {self.manifest_url(dag_id)}")
                self.fs.rm_file(path)
                self._remove_optional(path + SIGNATURE_SUFFIX)
            except OSError as exc:
                raise StoreError(f"cannot delete {self.manifest_url(dag_id)}: {exc}") from exc
        self._forget(path)

    # --- read --------------------------------------------------------------------------------

    def history(self, dag_id: str) -> list[Version]:
        """Every stored version of ``dag_id``, oldest first; ``current`` marks the one the
        current manifest is a copy of."""
        return self._history(dag_id)[0]

    def _history(self, dag_id: str) -> tuple[list[Version], bytes | None]:
        """The versions, and the current manifest's bytes (``None`` after a delete)."""
        names = self._version_names(dag_id)
        try:
            current = self._read_optional(self._path(dag_id))
        except OSError as exc:
            raise StoreError(f"cannot read {self.manifest_url(dag_id)}: {exc}") from exc
        if not names and current is None:
            raise StoreError(f"no manifest and no history for {dag_id} in {self.url}")
        current_name = _version_with_hash(names, _hash_or_none(current))
        versions = []
        for name in names:
            stamp, short = _VERSION_NAME.match(name).groups()  # type: ignore[union-attr]
            created = datetime.strptime(stamp, _VERSION_TIME).replace(tzinfo=timezone.utc)
            versions.append(Version(name, created, short, current=name == current_name))
        return versions, current

    def read_version(self, dag_id: str, version: str) -> FlowManifest:
        """One stored version, validated."""
        url = self.version_url(dag_id, version)
        try:
            data = self.fs.cat_file(self._version_path(dag_id, version))
        except FileNotFoundError as exc:
            raise StoreError(f"no version {url}") from exc
        except OSError as exc:
            raise StoreError(f"cannot read {url}: {exc}") from exc
        return parse_manifest(data, url, dag_id)

    def listing(self) -> dict[str, str]:
        """One listing of the current manifests: dag_id → a marker that changes whenever the
        manifest (or its signature) is replaced (ETag, generation, or mtime and inode)."""
        folder = f"{self.root}/{MANIFESTS_DIR}"
        self._forget(folder)
        try:
            entries = self.fs.ls(folder, detail=True)
        except FileNotFoundError:
            return {}
        except OSError as exc:
            raise StoreError(f"cannot list {self.url}: {exc}") from exc
        manifests: dict[str, str] = {}
        signatures: dict[str, str] = {}
        for info in entries:
            name = str(info["name"]).rstrip("/").rsplit("/", 1)[-1]
            if name.endswith(SUFFIX):
                manifests[name[: -len(SUFFIX)]] = _marker(info)
            elif name.endswith(SUFFIX + SIGNATURE_SUFFIX):
                signatures[name[: -len(SUFFIX + SIGNATURE_SUFFIX)]] = _marker(info)
        return {
            dag_id: f"{marker}|sig:{signatures[dag_id]}" if dag_id in signatures else marker
            for dag_id, marker in sorted(manifests.items())
        }

    def list(self) -> list[str]:
        """The DAG ids that have a current manifest, sorted."""
        return list(self.listing())

    def read(self, dag_id: str) -> FlowManifest:
        """One manifest, validated; :class:`ManifestError` names the URL and the field."""
        try:
            data = self.fs.cat_file(self._path(dag_id))
        except FileNotFoundError as exc:
            raise StoreError(f"no manifest {self.manifest_url(dag_id)}") from exc
        except OSError as exc:
            raise StoreError(f"cannot read {self.manifest_url(dag_id)}: {exc}") from exc
        return parse_manifest(data, self.manifest_url(dag_id), dag_id)

    def read_raw_many(
        self, dag_ids: list[str], *, signatures: bool = False
    ) -> dict[str, bytes | OSError]:
        """The bytes of many current manifests in one bulk (concurrent) request. A manifest
        that is gone or not readable maps to its FileNotFoundError or PermissionError; any
        other failure is the store's (network, server) and raises :class:`StoreError`. With
        ``signatures``, the keys ``<dag_id>.sig`` hold the signature sidecars."""
        paths = {self._path(d): d for d in dag_ids}
        if signatures:
            paths.update({self._path(d) + SIGNATURE_SUFFIX: d + SIGNATURE_SUFFIX for d in dag_ids})
        if not paths:
            return {}
        try:
            blobs = self.fs.cat(list(paths), on_error="return", **self._read_options)
        except OSError as exc:
            raise StoreError(f"cannot read manifests from {self.url}: {exc}") from exc
        for blob in blobs.values():
            if isinstance(blob, Exception) and not isinstance(blob, _OBJECT_ERRORS):
                raise StoreError(f"cannot read manifests from {self.url}: {blob}") from blob
        return {paths[_strip_protocol(self.fs, path)]: blob for path, blob in blobs.items()}

    def read_all(self) -> tuple[dict[str, FlowManifest], dict[str, ManifestError]]:
        """Every current manifest; bad ones are returned apart, not raised."""
        blobs = self.read_raw_many(self.list())
        manifests: dict[str, FlowManifest] = {}
        errors: dict[str, ManifestError] = {}
        for dag_id, blob in sorted(blobs.items()):
            url = self.manifest_url(dag_id)
            try:
                if isinstance(blob, Exception):
                    raise ManifestError(url, f"cannot be read: {blob}")
                manifests[dag_id] = parse_manifest(blob, url, dag_id)
            except ManifestError as exc:
                errors[dag_id] = exc
        return manifests, errors

    # --- internals ---------------------------------------------------------------------------

    def _forget(self, path: str) -> None:
        """Drop what this process's file system object has cached about ``path``: another
        writer may have changed it, and some clients answer ``info`` from the parent listing."""
        self.fs.invalidate_cache(path)
        self.fs.invalidate_cache(path.rsplit("/", 1)[0])

    def _read_optional(self, path: str) -> bytes | None:
        self._forget(path)
        try:
            return self.fs.cat_file(path)
        except FileNotFoundError:
            return None

    def _remove_optional(self, path: str) -> None:
        try:
            self.fs.rm_file(path)
        except FileNotFoundError:
            pass

    def _version_names(self, dag_id: str) -> list[str]:
        folder = self._version_dir(dag_id)
        self._forget(folder)
        try:
            entries = self.fs.ls(folder, detail=False)
        except FileNotFoundError:
            return []
        except OSError as exc:
            raise StoreError(f"cannot list {self.url}/{VERSIONS_DIR}/{dag_id}: {exc}") from exc
        names = (str(e).rstrip("/").rsplit("/", 1)[-1] for e in entries)
        stems = (n[: -len(SUFFIX)] for n in names if n.endswith(SUFFIX))
        return sorted(s for s in stems if _VERSION_NAME.match(s))

    def _version_of(self, dag_id: str, data: bytes | None) -> str | None:
        """The version the pointer bytes ``data`` are a copy of (``None``: none is)."""
        return _version_with_hash(self._version_names(dag_id), _hash_or_none(data))

    def _create(self, path: str, data: bytes) -> None:
        """Write ``path`` only if it does not exist yet; an existing one has the same bytes
        (the name holds the content hash), so that is not an error."""
        try:
            if self._local:
                folder = path.rsplit("/", 1)[0]
                os.makedirs(folder, exist_ok=True)
                temporary = f"{folder}/.{uuid.uuid4().hex}.tmp"
                with open(temporary, "wb") as out:
                    out.write(data)
                try:
                    os.link(temporary, path)  # atomic, and fails if the name exists
                finally:
                    os.unlink(temporary)
            else:
                self.fs.pipe_file(path, data, mode="create")
        except FileExistsError:
            pass

    def _swap_pointer(
        self,
        dag_id: str,
        data: bytes,
        replace: Callable[[bytes | None], bool],
        signature: bytes | None,
    ) -> bool:
        """Replace the current manifest with ``data`` if ``replace(current bytes)`` agrees,
        retrying when another writer got in between. False if ``replace`` declined."""
        path = self._path(dag_id)
        with self._pointer_lock(dag_id):
            for attempt in range(_POINTER_ATTEMPTS):
                self._forget(path)
                try:
                    tag = _etag(self.fs.info(path, refresh=True))
                except FileNotFoundError:
                    tag = None
                # Read after the tag: if the object changes in between, the conditional put fails.
                if not replace(self._read_optional(path)):
                    return False
                try:
                    self._put_pointer(path, data, tag)
                except _Conflict:
                    time.sleep(0.01 * (attempt % 10 + 1))
                    continue
                if signature:
                    self.fs.pipe_file(path + SIGNATURE_SUFFIX, signature)
                else:  # a signature of the bytes this replaced would now be wrong
                    self._remove_optional(path + SIGNATURE_SUFFIX)
                self._forget(path)
                return True
        raise StoreError(f"{self.manifest_url(dag_id)}: too many concurrent writers; try again")

    def _put_pointer(self, path: str, data: bytes, tag: str | None) -> None:
        if self._local:  # under the pointer lock: rename is enough
            folder = path.rsplit("/", 1)[0]
            os.makedirs(folder, exist_ok=True)
            temporary = f"{path}.{uuid.uuid4().hex}.tmp"
            with open(temporary, "wb") as out:
                out.write(data)
            os.replace(temporary, path)
            return
        _conditional_put(self.fs, path, data, tag)

    def _pointer_lock(self, dag_id: str):
        """Serializes pointer moves of one DAG on a local folder (an flock on its versions
        folder); object stores rely on conditional writes instead."""
        if not self._local:
            return nullcontext()
        return folder_lock(self._version_dir(dag_id))


def manifest_url(store_url: str, dag_id: str) -> str:
    """The URL of the current manifest of ``dag_id`` in the store at ``store_url``."""
    return f"{store_url.rstrip('/')}/{MANIFESTS_DIR}/{dag_id}{SUFFIX}"


class _Conflict(Exception):
    """A conditional write lost to another writer."""


def _conditional_put(
    fs: fsspec.AbstractFileSystem, path: str, data: bytes, tag: str | None
) -> None:
    """Write ``path`` only if it still has ETag ``tag`` (or, for ``None``, does not exist),
    where the store enforces that; otherwise write unconditionally (last writer wins)."""
    protocols = _protocols(fs)
    try:
        if tag is None:
            fs.pipe_file(path, data, mode="create")
        elif protocols & {"s3", "s3a"}:
            fs.pipe_file(path, data, IfMatch=tag)
        elif protocols & {"abfs", "az", "abfss"}:
            from azure.core import MatchConditions

            fs.pipe_file(path, data, etag=tag, match_condition=MatchConditions.IfNotModified)
        else:  # GCS through gcsfs has no conditional overwrite
            fs.pipe_file(path, data)
    except FileExistsError as exc:
        raise _Conflict() from exc
    except Exception as exc:
        if _is_precondition_failure(exc):
            raise _Conflict() from exc
        raise


def _protocols(fs: fsspec.AbstractFileSystem) -> set[str]:
    return set(fs.protocol) if isinstance(fs.protocol, (tuple, list)) else {fs.protocol}


def _is_precondition_failure(exc: BaseException) -> bool:
    """HTTP 412/409 from a conditional write, as s3fs (botocore) or adlfs (azure-core) report it."""
    for error in (exc, exc.__cause__):
        response = getattr(error, "response", None)
        code = response.get("Error", {}).get("Code") if isinstance(response, dict) else None
        if code in {"PreconditionFailed", "ConditionalRequestConflict"}:
            return True
        if getattr(error, "status_code", None) in {409, 412}:
            return True
    return False


def _etag(info: Mapping[str, Any]) -> str | None:
    return info.get("ETag") or info.get("etag")


_IDENTITY_KEYS = ("ETag", "etag", "generation", "md5Hash")


def _marker(info: Mapping[str, Any]) -> str:
    """What identifies this object's content in a listing: its ETag or generation where the
    store has one, else its modification time and inode (local folders); plus its size."""
    identity = [str(info[k]) for k in _IDENTITY_KEYS if info.get(k)]
    if not identity:
        keys = ("mtime", "ino", "LastModified", "last_modified")
        identity = [str(info[k]) for k in keys if info.get(k) is not None]
    return "|".join([*identity, str(info.get("size"))])


def _signature(data: bytes, key: bytes | None) -> bytes | None:
    return None if key is None else sign(data, key).encode()


def content_hash(data: bytes) -> str:
    """The SHA-256 of a manifest's stored bytes (what version names and the cache key on)."""
    return hashlib.sha256(data).hexdigest()


def _short_hash(data: bytes) -> str:
    return content_hash(data)[:12]


def _hash_or_none(data: bytes | None) -> str | None:
    return None if data is None else _short_hash(data)


def _version_with_hash(names: list[str], short_hash: str | None) -> str | None:
    """The newest version name whose content hash is ``short_hash``."""
    if short_hash is None:
        return None
    matching = [n for n in names if n.endswith(f"-{short_hash}")]
    return matching[-1] if matching else None


def _rollback_target(dag_id: str, versions: list[Version], to: str | None) -> Version:
    if to is not None:
        found = [v for v in versions if to in (v.name, v.content_hash)]
        if not found:
            raise StoreError(f"{dag_id} has no version {to!r} (see `metaflow-airflow history`)")
        return found[-1]
    current = [i for i, v in enumerate(versions) if v.current]
    if not current:
        if not versions:
            raise StoreError(f"{dag_id} has no stored versions to roll back to")
        return versions[-1]
    if current[0] == 0:
        raise StoreError(f"{dag_id}: the current version is the oldest; nothing to roll back to")
    return versions[current[0] - 1]


def _strip_protocol(fs: fsspec.AbstractFileSystem, path: str) -> str:
    return fs._strip_protocol(path).rstrip("/")


def parse_manifest(
    data: bytes | str,
    url: str,
    dag_id: str | None = None,
    model: type[_Manifest] = FlowManifest,  # type: ignore[assignment]
) -> _Manifest:
    """Validate manifest JSON (as ``model``, a FlowManifest class); the error names ``url`` and
    the first failing field. With ``dag_id`` (the name it is stored under), the manifest must
    declare that id."""
    try:
        manifest = model.model_validate_json(data)
    except ValidationError as exc:
        newer = _future_schema_version(data)
        if newer is not None:
            raise ManifestError(
                url,
                f"field schema_version: {newer} is newer than this metaflow-airflow reads "
                f"({SCHEMA_VERSION}); upgrade metaflow-airflow where Airflow runs",
            ) from exc
        first = exc.errors()[0]
        field = ".".join(str(part) for part in first["loc"]) or "(document)"
        more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
        raise ManifestError(url, f"field {field}: {first['msg']}{more}") from exc
    if dag_id is not None and manifest.dag_id != dag_id:
        raise ManifestError(
            url, f"field dag_id: {manifest.dag_id!r} does not match its file name {dag_id!r}"
        )
    return manifest


def _future_schema_version(data: bytes | str) -> int | None:
    try:
        document = json.loads(data)
    except ValueError:
        return None
    version = document.get("schema_version") if isinstance(document, dict) else None
    if isinstance(version, int) and not isinstance(version, bool) and version > SCHEMA_VERSION:
        return version
    return None


def _single_get_options(fs: fsspec.AbstractFileSystem) -> dict[str, int]:
    """``max_concurrency=1`` where s3fs knows it (2024.x and newer); older ones, as pinned by
    Airflow 2.x constraints, reject the keyword."""
    if not _protocols(fs) & {"s3", "s3a"}:
        return {}
    accepted = inspect.signature(type(fs)._cat_file).parameters
    return {"max_concurrency": 1} if "max_concurrency" in accepted else {}
