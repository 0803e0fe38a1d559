"""The manifest store: JSON manifests in a folder of any fsspec file system.

Layout under the store URL: ``manifests/<dag_id>.json``. A write is atomic: object stores
replace an object in one PUT, and on a local file system the manifest is written to a
temporary file and renamed over the old one, so a reader never sees half a manifest.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

import fsspec
from fsspec.implementations.local import LocalFileSystem
from pydantic import ValidationError

from .errors import ManifestError, StoreError
from .manifest import FlowManifest

MANIFESTS_DIR = "manifests"
SUFFIX = ".json"


class ManifestStore:
    """Reads and writes flow manifests under one URL."""

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

    def _path(self, dag_id: str) -> str:
        return f"{self.root}/{MANIFESTS_DIR}/{dag_id}{SUFFIX}"

    def manifest_url(self, dag_id: str) -> str:
        """The full URL of one manifest, as shown to users and in error messages."""
        return f"{self.url}/{MANIFESTS_DIR}/{dag_id}{SUFFIX}"

    def write(self, manifest: FlowManifest) -> str:
        """Store ``manifest`` (replacing the previous one of that DAG) and return its URL."""
        path = self._path(manifest.dag_id)
        data = manifest.to_json().encode("utf-8")
        try:
            if isinstance(self.fs, LocalFileSystem):
                self.fs.makedirs(f"{self.root}/{MANIFESTS_DIR}", exist_ok=True)
                temporary = f"{path}.{uuid.uuid4().hex}.tmp"
                self.fs.pipe_file(temporary, data)
                self.fs.mv(temporary, path)
            else:
                self.fs.pipe_file(path, data)
        except OSError as exc:
            raise StoreError(f"cannot write {self.manifest_url(manifest.dag_id)}: {exc}") from exc
        return self.manifest_url(manifest.dag_id)

    def list(self) -> list[str]:
        """The DAG ids that have a manifest, sorted."""
        folder = f"{self.root}/{MANIFESTS_DIR}"
        try:
            names = self.fs.ls(folder, detail=False) if self.fs.exists(folder) else []
        except OSError as exc:
            raise StoreError(f"cannot list {self.url}: {exc}") from exc
        base = [str(n).rstrip("/").rsplit("/", 1)[-1] for n in names]
        return sorted(n[: -len(SUFFIX)] for n in base if n.endswith(SUFFIX))

    def read(self, dag_id: str) -> FlowManifest:
        """One manifest, validated; :class:`ManifestError` names the URL and the field."""
        try:
            data = self.fs.cat_file(self._path(dag_id))
        except FileNotFoundError as exc:
            raise StoreError(f"no manifest {self.manifest_url(dag_id)}") from exc
        except OSError as exc:
            raise StoreError(f"cannot read {self.manifest_url(dag_id)}: {exc}") from exc
        return parse_manifest(data, self.manifest_url(dag_id))

    def read_all(self) -> tuple[dict[str, FlowManifest], dict[str, ManifestError]]:
        """Every manifest, read in one bulk request; bad ones are returned apart, not raised."""
        dag_ids = self.list()
        paths = {self._path(d): d for d in dag_ids}
        try:
            blobs = self.fs.cat(list(paths), on_error="return") if paths else {}
        except OSError as exc:
            raise StoreError(f"cannot read manifests from {self.url}: {exc}") from exc
        manifests: dict[str, FlowManifest] = {}
        errors: dict[str, ManifestError] = {}
        for path, blob in sorted(blobs.items()):
            dag_id = paths[_strip_protocol(self.fs, path)]
            url = self.manifest_url(dag_id)
            try:
                if isinstance(blob, Exception):
                    raise ManifestError(url, f"cannot be read: {blob}")
                manifests[dag_id] = parse_manifest(blob, url)
            except ManifestError as exc:
                errors[dag_id] = exc
        return manifests, errors


def _strip_protocol(fs: fsspec.AbstractFileSystem, path: str) -> str:
    return fs._strip_protocol(path).rstrip("/")


def parse_manifest(data: bytes | str, url: str) -> FlowManifest:
    """Validate manifest JSON; the error names ``url`` and the first failing field."""
    try:
        return FlowManifest.model_validate_json(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(part) for part in first["loc"]) or "(document)"
        more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
        raise ManifestError(url, f"field {field}: {first['msg']}{more}") from exc
