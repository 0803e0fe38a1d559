"""The objects of one manifest store on its file system, through its cloud (``clouds/``).

Where each object lives, reads that tolerate absence, create-only writes, and the
compare-and-swap of a DAG's current manifest (the pointer)."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

import fsspec

from metaflow_airflow.errors import StoreError
from metaflow_airflow.manifest.signing import SIGNATURE_SUFFIX, activation_of
from metaflow_airflow.store.clouds.base import WriteConflict
from metaflow_airflow.store.clouds.registry import cloud_of
from metaflow_airflow.store.versions import is_version_name

__all__ = ["StoreObjects", "manifest_url", "shown_url"]

MANIFESTS_DIR = "manifests"
VERSIONS_DIR = "versions"
SUFFIX = ".json"
_POINTER_ATTEMPTS = 100
# How many activations' lines a signature sidecar keeps: the current one and those before it
# that a reader may still hold the manifest of (read just before a burst of publishes).
_SIDECAR_LINES = 8


class StoreObjects:
    """One store's file system, its folder in it, and its cloud."""

    def __init__(self, url: str, storage_options: Mapping[str, Any] | None = None) -> None:
        if not url:
            raise StoreError(
                "no manifest store configured: pass --store or set METAFLOW_AIRFLOW_STORE"
            )
        self.url = shown_url(url.rstrip("/"))  # what messages and documentation show
        try:
            options = dict(storage_options or {})
            self.fs, self.root = fsspec.core.url_to_fs(url.rstrip("/"), **options)
        except (ImportError, ValueError) as exc:
            raise StoreError(f"cannot open manifest store {self.url}: {exc}") from exc
        self.root = self.root.rstrip("/")
        self.cloud = cloud_of(self.fs)
        try:
            self.cloud.prepare(self.fs)
        except Exception as exc:  # botocore's errors (a missing profile...) are no OSError
            raise StoreError(f"cannot open manifest store {self.url}: {exc}") from exc
        self.read_options = self.cloud.read_options(self.fs)

    def manifest_path(self, dag_id: str) -> str:
        return f"{self.root}/{MANIFESTS_DIR}/{dag_id}{SUFFIX}"

    def version_dir(self, dag_id: str) -> str:
        return f"{self.root}/{VERSIONS_DIR}/{dag_id}"

    def version_path(self, dag_id: str, version: str) -> str:
        return f"{self.version_dir(dag_id)}/{version}{SUFFIX}"

    def forget(self, path: str) -> None:
        """Drop what this process's file system object has cached about ``path``: another
        writer may have changed it, and some clients answer ``info`` from the parent listing."""
        self.fs.invalidate_cache(path)
        self.fs.invalidate_cache(path.rsplit("/", 1)[0])

    def read_optional(self, path: str) -> bytes | None:
        self.forget(path)
        try:
            return self.fs.cat_file(path)
        except FileNotFoundError:
            return None

    def remove_optional(self, path: str) -> None:
        try:
            self.fs.rm_file(path)
        except FileNotFoundError:
            pass

    def version_names(self, dag_id: str) -> list[str]:
        folder = self.version_dir(dag_id)
        self.forget(folder)
        try:
            entries = self.fs.ls(folder, detail=False)
        except FileNotFoundError:
            return []
        except OSError as exc:
            raise StoreError(f"cannot list {self.url}/{VERSIONS_DIR}/{dag_id}: {exc}") from exc
        names = (str(e).rstrip("/").rsplit("/", 1)[-1] for e in entries)
        stems = (n[: -len(SUFFIX)] for n in names if n.endswith(SUFFIX))
        return sorted(s for s in stems if is_version_name(s))

    def create(self, path: str, data: bytes) -> None:
        """Write ``path`` only if it does not exist yet; an existing one has the same bytes
        (the name holds the content hash), so that is not an error."""
        try:
            self.cloud.create(self.fs, path, data)
        except FileExistsError:
            pass

    def swap_pointer(
        self,
        dag_id: str,
        data: bytes,
        replace: Callable[[bytes | None], bool],
        signature: str | None,
    ) -> bool:
        """Replace the current manifest with ``data`` if ``replace(current bytes)`` agrees,
        retrying when another writer got in between. False if ``replace`` declined.

        A ``signature`` line joins the sidecar before the pointer moves and the lines of older
        activations leave it after, so a reader never sees a manifest without the line that
        signs it; without one, the sidecar goes (it would sign other bytes)."""
        path = self.manifest_path(dag_id)
        sidecar = path + SIGNATURE_SUFFIX
        with self.cloud.pointer_lock(self.version_dir(dag_id)):
            if signature:
                self.compare_and_swap(sidecar, lambda lines: _with_line(lines, signature))
            if not self.compare_and_swap(path, lambda current: data if replace(current) else None):
                return False
            if signature:
                self.compare_and_swap(sidecar, lambda lines: _settled(lines, signature))
            else:
                self.remove_optional(sidecar)
            self.forget(path)
            return True

    def compare_and_swap(self, path: str, change: Callable[[bytes | None], bytes | None]) -> bool:
        """Write ``change(current bytes)`` to ``path``, retrying when another writer got in
        between (where the store can tell); False if ``change`` declined (``None``)."""
        for attempt in range(_POINTER_ATTEMPTS):
            self.forget(path)
            try:
                tag = self.cloud.change_tag(self.fs.info(path, refresh=True))
            except FileNotFoundError:
                tag = None
            # Read after the tag: if the object changes in between, the conditional put fails.
            data = change(self.read_optional(path))
            if data is None:
                return False
            try:
                self.cloud.replace(self.fs, path, data, tag)
            except WriteConflict:
                time.sleep(0.01 * (attempt % 10 + 1))
                continue
            return True
        where = f"{self.url}/{path[len(self.root) + 1:]}"
        raise StoreError(f"{where}: too many concurrent writers; try again")


def _lines(sidecar: bytes | None) -> list[str]:
    return (sidecar or b"").decode("utf-8", errors="replace").split()


def _with_line(sidecar: bytes | None, signature: str) -> bytes:
    lines = _lines(sidecar)
    return "\n".join([*(line for line in lines if line != signature), signature, ""]).encode()


def _settled(sidecar: bytes | None, signature: str) -> bytes:
    """``signature`` and the lines of the few newest other activations: a newer publish may be
    on its way, and a reader may still hold a manifest it replaced (loaders refuse older
    activations than the newest they accepted, so an old line signs nothing they take)."""
    others = [line for line in _lines(sidecar) if line != signature and activation_of(line)]
    newest = sorted(others, key=activation_of, reverse=True)[: _SIDECAR_LINES - 1]
    return "\n".join([signature, *newest, ""]).encode()


def manifest_url(store_url: str, dag_id: str) -> str:
    """The URL of the current manifest of ``dag_id`` in the store at ``store_url``."""
    return f"{store_url.rstrip('/')}/{MANIFESTS_DIR}/{dag_id}{SUFFIX}"


def shown_url(url: str) -> str:
    """``url`` with the secret of its user information hidden (fsspec file systems such as
    ftp and sftp take ``user:password@host``; a lone token stands for a password): what every
    message, log line and DAG document shows."""
    scheme, separator, rest = url.partition("://")
    authority, slash, path = rest.partition("/")
    if not separator or "@" not in authority:
        return url
    user, _, host = authority.rpartition("@")
    name, colon, _ = user.partition(":")
    return f"{scheme}://{name + ':' if colon else ''}***@{host}{slash}{path}"
