"""The loader's last-known-good cache: manifests that passed validation, on local disk.

Every Airflow parse is a new process, so nothing in memory survives one; this folder does. It
lets a parse read only the manifests that changed, and keeps DAGs loading while the store is
down or a newly published manifest is broken. Layout, one folder per store and loader file
(a shard, or ``require_signed``, gets its own, so a cache filled without signature checks never
serves a signed-only loader)::

    <cache_dir>/<sha256(key)[:16]>/
        index.json            per DAG id: the store's change marker, the hash of the last good
                              manifest, what is wrong with the current one, when it was checked,
                              the newest signed activation accepted
        blobs/<sha256>.json   manifests that passed validation, by content hash
        retired/<sha256>.json manifests the index no longer names, kept for a day: a DAG built
                              in a long-lived process (``dag.test()``, a notebook, the demo)
                              reads its manifest from here when its tasks run, maybe after a
                              newer parse replaced it

Every write is a temporary file renamed into place, so parsers running at the same time never
read half a file; the worst a race costs is one extra read on the next parse.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path

from pydantic import PrivateAttr

from metaflow_airflow.errors import ManifestError
from metaflow_airflow.manifest.accept import accept_manifest
from metaflow_airflow.manifest.models import FlowManifest
from metaflow_airflow.manifest.signing import SignatureCheck
from metaflow_airflow.store.versions import content_hash

INDEX_FORMAT = 1
RETIRED_SECONDS = 24 * 3600


@dataclass(frozen=True)
class CacheEntry:
    """What the cache knows about one DAG id."""

    marker: str
    """The store's change marker of the current manifest when last read ("" = unknown)."""
    good: str | None
    """Content hash of the last manifest that validated (and is in ``blobs/``)."""
    error: str | None
    """Why the current manifest is not the good one (``None``: it is)."""
    checked_at: float
    """When the store last confirmed this entry (``time.time()``)."""
    activated: str = ""
    """``require_signed``: the newest activation accepted for this DAG id (kept after the DAG
    is deleted), older ones are replays."""
    deleted: bool = False
    """``require_signed``: the DAG was deleted after ``activated``; only a newer activation
    brings it back."""


class HashedManifest(FlowManifest):
    """A manifest that knows the SHA-256 of the stored bytes it was accepted from, so that its
    ``content_hash`` (each DAG's docs show it) costs nothing: re-serializing every manifest to
    hash it would cost a noticeable part of building its DAG."""

    _digest: str = PrivateAttr(default="")

    @property
    def content_hash(self) -> str:
        return self._digest or super().content_hash

    @classmethod
    def accept(
        cls,
        data: bytes | Exception,
        url: str,
        dag_id: str,
        *,
        signature: bytes | Exception | None = None,
        signatures: SignatureCheck | None = None,
    ) -> HashedManifest:
        """:func:`~metaflow_airflow.manifest.accept.accept_manifest` of ``data``."""
        manifest = accept_manifest(
            data, url, dag_id, signature=signature, signatures=signatures, model=cls
        )
        manifest._digest = content_hash(data)  # type: ignore[arg-type]
        return manifest


class CachedManifest:
    """A validated manifest of the cache, and its DAG's way back to it. A full parse builds
    every DAG but runs none of their tasks, so once a DAG is built the loader ``release``s the
    parsed manifest (peak memory at 1,000 flows: docs/performance.md);
    ``manifest`` parses the cached file again if a task of that parse runs after all
    (``dag.test()``). A manifest the cache could not keep (an unwritable folder) stays."""

    __slots__ = ("_cache", "_kept", "_manifest", "dag_id", "digest")

    def __init__(self, cache: ManifestCache, manifest: HashedManifest, *, kept: bool) -> None:
        self._cache = cache
        self._kept = kept
        self._manifest: HashedManifest | None = manifest
        self.dag_id = manifest.dag_id
        self.digest = manifest.content_hash

    @property
    def manifest(self) -> HashedManifest:
        if self._manifest is None:
            manifest = self._cache.manifest(self.dag_id, self.digest)
            if manifest is None:
                raise ManifestError(
                    str(self._cache.blob_path(self.digest)),
                    f"the manifest DAG {self.dag_id} was built from is no longer in the loader's "
                    "cache (a newer one replaced it more than a day ago): parse the DAG again",
                )
            self._manifest = manifest
        return self._manifest

    def release(self) -> None:
        """Drop the parsed manifest (kept ones only: they can be parsed again)."""
        if self._kept:
            self._manifest = None


class ManifestCache:
    """The cache folder of one loader configuration, ``key`` (store URL, shard, signing)."""

    def __init__(self, folder: str | os.PathLike[str], key: str) -> None:
        self.root = Path(folder) / hashlib.sha256(key.encode()).hexdigest()[:16]
        self.index_path = self.root / "index.json"
        self.blobs = self.root / "blobs"
        self.retired = self.root / "retired"

    def load(self) -> dict[str, CacheEntry]:
        """The index; empty when missing, unreadable or from another format (a cold cache)."""
        try:
            document = json.loads(self.index_path.read_bytes())
            if document.get("format") != INDEX_FORMAT:
                return {}
            return {dag_id: CacheEntry(**e) for dag_id, e in document["entries"].items()}
        except (OSError, ValueError, TypeError, KeyError, AttributeError):
            return {}

    def save(self, entries: dict[str, CacheEntry]) -> None:
        """Replace the index and drop the manifests it no longer names (raises OSError when
        the folder is not writable)."""
        document = {
            "format": INDEX_FORMAT,
            "entries": {dag_id: asdict(e) for dag_id, e in sorted(entries.items())},
        }
        _write_atomically(self.index_path, json.dumps(document, separators=(",", ":")).encode())
        kept = {f"{e.good}.json" for e in entries.values() if e.good}
        for blob in self.blobs.glob("*.json"):
            if blob.name not in kept:
                self._retire(blob)
        expired = time.time() - RETIRED_SECONDS
        for blob in self.retired.glob("*.json"):
            try:
                if blob.stat().st_mtime < expired:
                    blob.unlink()
            except OSError:  # another parser removed it first
                pass

    def _retire(self, blob: Path) -> None:
        """Move a manifest the index no longer names to ``retired/``, dated now."""
        target = self.retired / blob.name
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.replace(blob, target)
            os.utime(target)
        except OSError:  # another parser retired it first
            pass

    def blob_path(self, digest: str) -> Path:
        return self.blobs / f"{digest}.json"

    def manifest(self, dag_id: str, digest: str) -> HashedManifest | None:
        """The cached manifest of ``dag_id`` with this hash; ``None`` if absent, altered on
        disk, or no longer valid for this version of metaflow-airflow (then it is read from the
        store again)."""
        path = self.blob_path(digest)
        try:
            data = path.read_bytes()
        except OSError:
            try:  # replaced since this DAG was built: see the module's docs
                path = self.retired / path.name
                data = path.read_bytes()
            except OSError:
                return None
        if content_hash(data) != digest:
            return None
        try:
            return HashedManifest.accept(data, str(path), dag_id)
        except ManifestError:
            return None

    def keep(self, digest: str, data: bytes) -> None:
        """Store a manifest that passed validation, unless the same bytes are there already (a
        file altered on disk is replaced); raises OSError when the folder is not writable."""
        path = self.blob_path(digest)
        try:
            if content_hash(path.read_bytes()) == digest:
                return
        except OSError:
            pass
        _write_atomically(path, data)


def _write_atomically(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    try:
        temporary.write_bytes(data)
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)
