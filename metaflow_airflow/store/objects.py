"""The objects of one manifest store on its file system, through its cloud (``clouds/``).

Where each object lives, reads that tolerate absence, create-only writes, and the
compare-and-swap of a DAG's current manifest (the pointer)."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta, timezone
from typing import Any

import fsspec

from metaflow_airflow.errors import SignatureError, StoreError
from metaflow_airflow.manifest.signing import (
    ACTIVATION_FORMAT,
    SIGNATURE_SUFFIX,
    activation_of,
    sign_activation,
    verify,
)
from metaflow_airflow.store.clouds.base import WriteConflict
from metaflow_airflow.store.clouds.registry import cloud_of
from metaflow_airflow.store.versions import is_version_name

__all__ = ["StoreObjects", "manifest_url", "shown_url"]

MANIFESTS_DIR = "manifests"
VERSIONS_DIR = "versions"
SUFFIX = ".json"
_POINTER_ATTEMPTS = 100
# How many lines of older activations a signature sidecar keeps beside the current one (of
# manifests a reader may have read just before a burst of publishes), and at most as many of
# newer ones (publishes on their way, each of which removes its line if it does not move the
# pointer).
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
            raise StoreError(
                f"cannot open manifest store {self.url}: {self.cloud.explain(exc)}"
            ) from exc
        self.read_options = self.cloud.read_options(self.fs)

    def manifest_path(self, dag_id: str) -> str:
        return f"{self.root}/{MANIFESTS_DIR}/{dag_id}{SUFFIX}"

    def version_dir(self, dag_id: str) -> str:
        return f"{self.root}/{VERSIONS_DIR}/{dag_id}"

    def version_path(self, dag_id: str, version: str) -> str:
        return f"{self.version_dir(dag_id)}/{version}{SUFFIX}"

    def require_bucket(self, action: str) -> None:
        """Raise :class:`StoreError` if the store's bucket (container) does not exist: a
        listing under it is only empty, and the user's fix is to create it or to correct the
        URL."""
        if not self.cloud.has_buckets:
            return
        bucket = self.root.split("/", 1)[0]
        self.fs.invalidate_cache(bucket)
        if not self.fs.exists(bucket):
            raise StoreError(
                f"cannot {action} manifest store {self.url}: the {self.cloud.bucket_word} "
                f"{bucket!r} does not exist; create it, or correct the store URL"
            )

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
            raise StoreError(
                f"cannot list {self.url}/{VERSIONS_DIR}/{dag_id}: {self.cloud.explain(exc)}"
            ) from exc
        names = (str(e).rstrip("/").rsplit("/", 1)[-1] for e in entries)
        stems = (n[: -len(SUFFIX)] for n in names if n.endswith(SUFFIX))
        return sorted(s for s in stems if is_version_name(s))

    def read_many(self, paths: dict[str, str]) -> dict[str, bytes | OSError]:
        """Path → name of many objects; name → bytes (or the object's own error), in one
        bulk request; a failure that is not one object's raises :class:`StoreError`."""
        if not paths:
            return {}
        try:
            blobs = self.cloud.read_many(self.fs, list(paths), self.read_options)
        except OSError as exc:
            raise StoreError(
                f"cannot read manifest store {self.url}: {self.cloud.explain(exc)}"
            ) from exc
        for blob in blobs.values():
            if isinstance(blob, Exception) and not isinstance(blob, self.cloud.object_errors):
                raise StoreError(
                    f"cannot read manifest store {self.url}: {self.cloud.explain(blob)}"
                ) from blob
        strip = self.fs._strip_protocol
        return {paths[strip(path).rstrip("/")]: blob for path, blob in blobs.items()}

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
        *,
        key: bytes | None = None,
        kept_signature: str | None = None,
    ) -> bool:
        """Replace the current manifest with ``data`` if ``replace(current bytes)`` agrees,
        retrying when another writer got in between. False if ``replace`` declined.

        With the signing ``key``, ``data`` is signed as made current later than every
        activation its sidecar names, its line joins the sidecar before the pointer moves, the
        pointer moves only forward in activation, and afterwards the sidecar keeps that line,
        newer ones (publishes on their way) and the replaced manifest's (readers may hold it):
        a reader never meets a manifest without its line. ``kept_signature`` (a rollback
        without the key) joins the sidecar as it is; with neither, the sidecar goes."""
        path = self.manifest_path(dag_id)
        sidecar = path + SIGNATURE_SUFFIX
        with self.cloud.pointer_lock(self.version_dir(dag_id)):
            if key is None:
                if kept_signature:
                    self.compare_and_swap(sidecar, lambda old: _joined(_lines(old), kept_signature))
                if not self.compare_and_swap(path, lambda now: data if replace(now) else None):
                    return False
                if not kept_signature:
                    self.remove_optional(sidecar)
                self.forget(path)
                return True
            return self._swap_signed(path, sidecar, data, replace, key)

    def _swap_signed(
        self,
        path: str,
        sidecar: str,
        data: bytes,
        replace: Callable[[bytes | None], bool],
        key: bytes,
    ) -> bool:
        signed: dict[str, str] = {}

        def add(old: bytes | None) -> bytes:
            lines = _lines(old)
            activated = _later_than(max(map(activation_of, lines), default=""))
            signed["line"] = sign_activation(data, key, activated)
            return _joined(lines, signed["line"])

        self.compare_and_swap(sidecar, add)
        line = signed["line"]

        def move(current: bytes | None) -> bytes | None:
            if not replace(current):
                return None
            others = [other for other in _lines(self.read_optional(sidecar)) if other != line]
            if current is not None and _activation(current, others, key) >= activation_of(line):
                return None  # a newer activation is current already
            return data

        moved = self.compare_and_swap(path, move)

        def settle(old: bytes | None) -> bytes | None:
            lines = [other for other in _lines(old) if other != line]
            if not moved:  # never current: its line goes
                return _joined(lines) if len(lines) < len(_lines(old)) else None
            own = activation_of(line)
            newer = [other for other in lines if activation_of(other) > own]
            older = sorted(
                (other for other in lines if activation_of(other) < own), key=activation_of
            )
            return _joined([*older[-_SIDECAR_LINES:], line, *newer[-_SIDECAR_LINES:]])

        self.compare_and_swap(sidecar, settle)
        self.forget(path)
        return moved

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
        where = f"{self.url}/{path[len(self.root) + 1 :]}"
        raise StoreError(f"{where}: too many concurrent writers; try again")


def _lines(sidecar: bytes | None) -> list[str]:
    return (sidecar or b"").decode("utf-8", errors="replace").split()


def _joined(lines: list[str], extra: str | None = None) -> bytes:
    kept = [line for line in lines if line != extra]
    return "\n".join([*kept, *([extra] if extra else []), ""]).encode()


def _activation(data: bytes, lines: list[str], key: bytes) -> str:
    """The activation of ``data`` that sidecar ``lines`` state ("" when none signs it)."""
    try:
        return verify(data, "\n".join(lines), key) if lines else ""
    except SignatureError:
        return ""


def _later_than(newest: str) -> str:
    """Now, as an activation, or just after ``newest`` if the clock is not past it."""
    now = datetime.now(timezone.utc)
    if newest:
        after = datetime.strptime(newest, ACTIVATION_FORMAT).replace(tzinfo=timezone.utc)
        now = max(now, after + timedelta(microseconds=1))
    return now.strftime(ACTIVATION_FORMAT)


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
