"""A folder on this machine (``file://``): the embedded default, and Metaflow's local datastore.

There is no conditional write on a file system: a publish takes a file lock on the DAG's
versions folder and renames a temporary file over the pointer; a version is created with
``os.link``, which fails if the name exists. Its change marker is the modification time and
inode (a rename makes a new inode even within the same second).

Anything can sit in a folder under a manifest's name: a directory, a FIFO, a link to a device
or a link loop. Reads open without blocking and take regular files only, and any failure is that
object's error: the other manifests load, and new ones are seen.
"""

from __future__ import annotations

import errno
import os
import stat
import uuid
from collections.abc import Mapping
from contextlib import AbstractContextManager
from typing import Any, ClassVar

from metaflow_airflow.manifest.accept import MAX_MANIFEST_BYTES
from metaflow_airflow.store.clouds.base import Cloud
from metaflow_airflow.store.locking import folder_lock


class LocalCloud(Cloud):
    name: ClassVar[str] = "local"
    protocols: ClassVar[frozenset[str]] = frozenset({"file", "local"})
    marker_keys: ClassVar[tuple[str, ...]] = ("mtime", "ino")
    # Every error reading one file is that file's: the folder itself was just listed.
    object_errors: ClassVar[tuple[type[OSError], ...]] = (OSError,)

    def read_many(
        self, fs: Any, paths: list[str], options: Mapping[str, Any]
    ) -> dict[str, bytes | Exception]:
        return {path: read_regular_file(path) for path in paths}

    def create(self, fs: Any, path: str, data: bytes) -> None:
        folder = path.rsplit("/", 1)[0]
        os.makedirs(folder, exist_ok=True)
        temporary = f"{folder}/.{uuid.uuid4().hex}.tmp"
        with open(temporary, "wb") as out:
            out.write(data)
        try:
            os.link(temporary, path)  # atomic, and fails if the name exists
        finally:
            os.unlink(temporary)

    def replace(self, fs: Any, path: str, data: bytes, tag: str | None) -> None:
        """Under :meth:`pointer_lock`, a rename is enough."""
        os.makedirs(path.rsplit("/", 1)[0], exist_ok=True)
        temporary = f"{path}.{uuid.uuid4().hex}.tmp"
        with open(temporary, "wb") as out:
            out.write(data)
        os.replace(temporary, path)

    def pointer_lock(self, folder: str) -> AbstractContextManager[None]:
        return folder_lock(folder)

    def task_config(
        self, root: str, metaflow_config: Any, environ: Mapping[str, str]
    ) -> dict[str, Any]:
        return {
            "METAFLOW_DATASTORE_SYSROOT_LOCAL": metaflow_config.DATASTORE_SYSROOT_LOCAL
            or os.path.dirname(root),
            # Unset, Metaflow keeps cards under the task's working folder, which local compute
            # deletes.
            "METAFLOW_CARD_LOCALROOT": metaflow_config.CARD_LOCALROOT
            or os.path.join(root, "mf.cards"),
        }


def read_regular_file(path: str) -> bytes | OSError:
    """The bytes of ``path`` if it is (or links to) a regular file of a manifest's size, else
    the error: opening never blocks (a FIFO) and reading never runs on (a device)."""
    try:
        descriptor = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except OSError as exc:
        return exc
    try:
        info = os.fstat(descriptor)
        if not stat.S_ISREG(info.st_mode):
            return OSError(errno.EINVAL, "not a regular file", path)
        if info.st_size > MAX_MANIFEST_BYTES:
            return OSError(errno.EFBIG, f"larger than {MAX_MANIFEST_BYTES} bytes", path)
        with os.fdopen(os.dup(descriptor), "rb") as stream:
            return stream.read(MAX_MANIFEST_BYTES + 1)
    except OSError as exc:
        return exc
    finally:
        os.close(descriptor)
