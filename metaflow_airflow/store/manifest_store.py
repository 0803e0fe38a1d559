"""The manifest store: versioned JSON manifests in a folder of any fsspec file system.

Layout under the store URL::

    manifests/<dag_id>.json                          the current manifest of each DAG
    versions/<dag_id>/<UTC time>-<sha256[:12]>.json  every published version, never rewritten

A publish first creates its version (create-only), then moves the current pointer by replacing
``manifests/<dag_id>.json`` with the same bytes. The pointer is a full copy, not a reference, so
a loader needs one listing of ``manifests/`` plus one read per changed DAG, and a reader never
sees half a manifest: object stores replace an object in one PUT, and a local folder gets a
temporary file renamed over the old one. Pointer moves are compare-and-swap where the store
enforces it (see ``clouds/``: S3 ``IfMatch``, Azure ``etag``; a file lock on a local folder;
last writer wins on GCS), and a publish never moves the pointer back past a newer version, so
concurrent publishes end with the newest version current. Signatures (``require_signed``) are
sidecars ``<manifest>.sig``: a version's is written before the pointer moves, and rollback
copies it.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Mapping
from datetime import datetime, timezone
from typing import Any, TypeVar

from metaflow_airflow.errors import ManifestError, MetaflowAirflowError, StoreError
from metaflow_airflow.manifest.accept import accept_manifest
from metaflow_airflow.manifest.models import FlowManifest
from metaflow_airflow.manifest.signing import (
    ACTIVATION_FORMAT,
    SIGNATURE_SUFFIX,
    sign_activation,
)
from metaflow_airflow.store.objects import (
    MANIFESTS_DIR,
    SUFFIX,
    VERSIONS_DIR,
    StoreObjects,
    manifest_url,
)
from metaflow_airflow.store.versions import (
    Version,
    new_version_name,
    rollback_target,
    version_with_hash,
    versions,
)

__all__ = ["ManifestStore", "Version", "manifest_url"]

Method = TypeVar("Method", bound=Callable[..., Any])
# The object a write check creates and removes again, at the top of the store's folder
# (beside, not in, the folders the loaders list).
WRITE_CHECK = ".metaflow-airflow-write-check"


def _store_operation(action: str) -> Callable[[Method], Method]:
    """Any failure of the store's client in ``method`` (botocore's missing credentials, a
    refused connection...) becomes one :class:`StoreError` naming the store, the cause in plain
    words and the fix (the clouds' ``explain``), raised from the client's error."""

    def wrap(method: Method) -> Method:
        @functools.wraps(method)
        def run(self: ManifestStore, *args: Any, **kwargs: Any) -> Any:
            try:
                return method(self, *args, **kwargs)
            except MetaflowAirflowError:
                raise
            except Exception as exc:
                explained = self._objects.cloud.explain(exc)
                raise StoreError(f"cannot {action} manifest store {self.url}: {explained}") from exc

        return run  # type: ignore[return-value]

    return wrap


class ManifestStore:
    """Publishes, lists and reads flow manifests under one URL."""

    def __init__(self, url: str, storage_options: Mapping[str, Any] | None = None) -> None:
        self._objects = StoreObjects(url, storage_options)
        self.url, self.fs, self.root = self._objects.url, self._objects.fs, self._objects.root

    @_store_operation("write to")
    def check_writable(self) -> None:
        """Create and remove a small object beside the store's folders: a store that cannot be
        written fails a publish before its flow uploads a code package. Its first request
        also sets up the store's client (for S3 as slow as importing it), which a publish
        overlaps with the start of its flow process."""
        path = f"{self.root}/{WRITE_CHECK}"
        try:
            self._objects.create(path, b"")
        except FileNotFoundError:
            self._objects.require_bucket("write to")
            raise
        self._objects.remove_optional(path)

    # --- names -------------------------------------------------------------------------------

    def manifest_url(self, dag_id: str) -> str:
        """The full URL of one manifest, as shown to users and in error messages."""
        return manifest_url(self.url, dag_id)

    def version_url(self, dag_id: str, version: str) -> str:
        """The full URL of one stored version."""
        return f"{self.url}/{VERSIONS_DIR}/{dag_id}/{version}{SUFFIX}"

    # --- publish, roll back, delete ----------------------------------------------------------

    @_store_operation("write to")
    def write(self, manifest: FlowManifest, signing_key: bytes | None = None) -> str:
        """Publish ``manifest``: store it as a new version, then make that version current
        (unless a newer one already is). Returns the current manifest's URL."""
        dag_id = manifest.dag_id
        data = manifest.to_json().encode("utf-8")
        now = datetime.now(timezone.utc)
        version = new_version_name(data, now)
        try:
            version_path = self._objects.version_path(dag_id, version)
            self._objects.create(version_path, data)
            if signing_key is not None:
                signature = sign_activation(data, signing_key, now.strftime(ACTIVATION_FORMAT))
                self._objects.create(version_path + SIGNATURE_SUFFIX, signature.encode())

            def is_older(current: bytes | None) -> bool:
                shown = version_with_hash(self._objects.version_names(dag_id), current)
                return shown is None or shown < version

            if signing_key is None:
                self._objects.swap_pointer(dag_id, data, is_older)
            else:  # signed: the newest activation is current (see swap_pointer)
                self._objects.swap_pointer(dag_id, data, lambda current: True, key=signing_key)
        except OSError as exc:
            raise StoreError(
                f"cannot write {self.manifest_url(dag_id)}: {self._objects.cloud.explain(exc)}"
            ) from exc
        return self.manifest_url(dag_id)

    @_store_operation("write to")
    def rollback(
        self, dag_id: str, to: str | None = None, signing_key: bytes | None = None
    ) -> Version:
        """Make an earlier version current again: ``to`` (a version name or its hash), by
        default the one before the current version (the newest one after a delete). With the
        signing key, the version is signed as made current now; without, it keeps its own
        signature, which loaders that require signatures refuse as a replay."""
        found, before = self._history(dag_id)
        target = rollback_target(dag_id, found, to)
        path = self._objects.version_path(dag_id, target.name)
        try:
            data = self.fs.cat_file(path)
            kept = self._objects.read_optional(path + SIGNATURE_SUFFIX)
        except OSError as exc:
            raise StoreError(
                f"cannot read {self.version_url(dag_id, target.name)}: {self._objects.cloud.explain(exc)}"
            ) from exc
        accept_manifest(data, self.version_url(dag_id, target.name), dag_id)
        kept_signature = kept.decode("utf-8", errors="replace").strip() if kept else None
        try:
            moved = self._objects.swap_pointer(
                dag_id,
                data,
                lambda now: now == before,
                key=signing_key,
                kept_signature=None if signing_key else kept_signature,
            )
        except OSError as exc:
            raise StoreError(
                f"cannot write {self.manifest_url(dag_id)}: {self._objects.cloud.explain(exc)}"
            ) from exc
        if not moved:
            raise StoreError(
                f"{self.manifest_url(dag_id)} changed during the rollback; run it again"
            )
        return Version(target.name, target.created_at, target.content_hash, current=True)

    @_store_operation("write to")
    def delete(self, dag_id: str) -> None:
        """Remove the current manifest: loaders drop the DAG; its history stays for rollback.
        Its signature sidecar stays too: a publish racing this delete adds its line there
        before it moves the pointer, and a line signs only the bytes and activation it names
        (loaders refuse older activations than the newest they accepted)."""
        path = self._objects.manifest_path(dag_id)
        with self._objects.cloud.pointer_lock(self._objects.version_dir(dag_id)):
            self._objects.forget(path)
            try:
                if not self.fs.exists(path):  # S3 deletes a missing key without complaint
                    raise StoreError(f"no manifest {self.manifest_url(dag_id)}")
                self.fs.rm_file(path)
            except FileNotFoundError as exc:  # another delete got there first
                raise StoreError(f"no manifest {self.manifest_url(dag_id)}") from exc
            except OSError as exc:
                raise StoreError(
                    f"cannot delete {self.manifest_url(dag_id)}: {self._objects.cloud.explain(exc)}"
                ) from exc
        self._objects.forget(path)

    @_store_operation("read")
    def current(self, dag_id: str) -> dict[str, Any] | None:
        """The current manifest of ``dag_id`` as plain JSON data, without validation (who
        owns a DAG id, even if its manifest is of an older schema); ``None`` if there is none
        or it is not a JSON object."""
        data = self._objects.read_optional(self._objects.manifest_path(dag_id))
        try:
            document = json.loads(data) if data is not None else None
        except ValueError:
            return None
        return document if isinstance(document, dict) else None

    @_store_operation("read")
    def unchanged_version(self, manifest: FlowManifest, signed: bool = False) -> str | None:
        """The current version of ``manifest.dag_id`` if it has the same content as
        ``manifest`` but for when and by whom it was published (a new publish of an unchanged
        flow writes nothing); with ``signed``, only if the current one is signed."""
        dag_id = manifest.dag_id
        path = self._objects.manifest_path(dag_id)
        current = self._objects.read_optional(path)
        if current is None or (
            signed and self._objects.read_optional(path + SIGNATURE_SUFFIX) is None
        ):
            return None
        try:
            stored = json.loads(current)
        except ValueError:
            return None
        ignored = {"published_at", "published_by"}
        fresh = json.loads(manifest.to_json())
        if (
            not isinstance(stored, dict)
            or any(stored.get(key) != value for key, value in fresh.items() if key not in ignored)
            or set(stored) - set(fresh)
        ):
            return None
        return version_with_hash(self._objects.version_names(dag_id), current)

    # --- read --------------------------------------------------------------------------------

    @_store_operation("read")
    def history(self, dag_id: str) -> list[Version]:
        """Every stored version of ``dag_id``, oldest first; ``current`` marks the one the
        current manifest is a copy of."""
        return self._history(dag_id)[0]

    def _history(self, dag_id: str) -> tuple[list[Version], bytes | None]:
        """The versions, and the current manifest's bytes (``None`` after a delete)."""
        names = self._objects.version_names(dag_id)
        try:
            current = self._objects.read_optional(self._objects.manifest_path(dag_id))
        except OSError as exc:
            raise StoreError(
                f"cannot read {self.manifest_url(dag_id)}: {self._objects.cloud.explain(exc)}"
            ) from exc
        if not names and current is None:
            self._objects.require_bucket("read")
            raise StoreError(f"no manifest and no history for {dag_id} in {self.url}")
        return versions(names, current), current

    @_store_operation("read")
    def read_version(self, dag_id: str, version: str) -> FlowManifest:
        """One stored version, validated."""
        data, _ = self.read_version_raw(dag_id, version)
        return accept_manifest(data, self.version_url(dag_id, version), dag_id)

    @_store_operation("list")
    def version_names(self, dag_id: str) -> list[str]:
        """The names of every stored version of ``dag_id``, oldest first."""
        return self._objects.version_names(dag_id)

    @_store_operation("read")
    def read_version_raw(self, dag_id: str, version: str) -> tuple[bytes, bytes | None]:
        """One stored version's bytes and its signature sidecar's (``None``: unsigned)."""
        path = self._objects.version_path(dag_id, version)
        url = self.version_url(dag_id, version)
        try:
            return self.fs.cat_file(path), self._objects.read_optional(path + SIGNATURE_SUFFIX)
        except FileNotFoundError as exc:
            raise StoreError(f"no version {url}") from exc
        except OSError as exc:
            raise StoreError(f"cannot read {url}: {self._objects.cloud.explain(exc)}") from exc

    @_store_operation("list")
    def listing(self) -> dict[str, str]:
        """One listing of the current manifests: dag_id → a marker that changes whenever the
        manifest (or its signature) is replaced (see the clouds' ``marker``)."""
        folder = f"{self.root}/{MANIFESTS_DIR}"
        self._objects.forget(folder)
        try:
            entries = self.fs.ls(folder, detail=True)
        except FileNotFoundError:
            self._objects.require_bucket("list")
            return {}
        except OSError as exc:
            raise StoreError(
                f"cannot list manifest store {self.url}: {self._objects.cloud.explain(exc)}"
            ) from exc
        manifests: dict[str, str] = {}
        signatures: dict[str, str] = {}
        for info in entries:
            name = str(info["name"]).rstrip("/").rsplit("/", 1)[-1]
            marker = self._objects.cloud.marker(info)
            if name.endswith(SUFFIX):
                manifests[name[: -len(SUFFIX)]] = marker
            elif name.endswith(SUFFIX + SIGNATURE_SUFFIX):
                signatures[name[: -len(SUFFIX + SIGNATURE_SUFFIX)]] = marker
        return {
            dag_id: f"{marker}|sig:{signatures[dag_id]}" if dag_id in signatures else marker
            for dag_id, marker in sorted(manifests.items())
        }

    def list(self) -> list[str]:
        """The DAG ids that have a current manifest, sorted."""
        return list(self.listing())

    @_store_operation("read")
    def read(self, dag_id: str) -> FlowManifest:
        """One manifest, validated; :class:`ManifestError` names the URL and the field."""
        data = self.read_raw_many([dag_id])[dag_id]
        if isinstance(data, FileNotFoundError):
            self._objects.require_bucket("read")
            raise StoreError(f"no manifest {self.manifest_url(dag_id)}") from data
        return accept_manifest(data, self.manifest_url(dag_id), dag_id)

    @_store_operation("read")
    def read_raw_many(
        self, dag_ids: list[str], *, signatures: bool = False
    ) -> dict[str, bytes | OSError]:
        """The bytes of many current manifests in one bulk (concurrent) request. A manifest
        that is gone or not readable maps to its error (FileNotFoundError, PermissionError, and
        on a local folder any OSError); any other failure is the store's (network, server) and
        raises :class:`StoreError`. With ``signatures``, the keys ``<dag_id>.sig`` hold the
        signature sidecars, read in a second request once the manifests are: a sidecar keeps
        the lines of the manifests a publish replaced, not of those still to come."""
        paths = {self._objects.manifest_path(d): d for d in dag_ids}
        blobs = self._objects.read_many(paths)
        if signatures:
            sidecars = {path + SIGNATURE_SUFFIX: d + SIGNATURE_SUFFIX for path, d in paths.items()}
            blobs.update(self._objects.read_many(sidecars))
        return blobs

    def read_all(self) -> tuple[dict[str, FlowManifest], dict[str, ManifestError]]:
        """Every current manifest, accepted as the loader accepts it (without signatures);
        bad ones are returned apart, not raised."""
        blobs = self.read_raw_many(self.list())
        manifests: dict[str, FlowManifest] = {}
        errors: dict[str, ManifestError] = {}
        for dag_id, blob in sorted(blobs.items()):
            try:
                manifests[dag_id] = accept_manifest(blob, self.manifest_url(dag_id), dag_id)
            except ManifestError as exc:
                errors[dag_id] = exc
        return manifests, errors
