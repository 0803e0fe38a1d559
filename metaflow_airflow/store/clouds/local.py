"""A folder on this machine (``file://``): the embedded default, and Metaflow's local datastore.

There is no conditional write on a file system: a publish takes a file lock on the DAG's
versions folder and renames a temporary file over the pointer; a version is created with
``os.link``, which fails if the name exists. Its change marker is the modification time and
inode (a rename makes a new inode even within the same second).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Mapping
from contextlib import AbstractContextManager
from typing import Any, ClassVar

from metaflow_airflow.store.clouds.base import Cloud
from metaflow_airflow.store.locking import folder_lock


class LocalCloud(Cloud):
    name: ClassVar[str] = "local"
    protocols: ClassVar[frozenset[str]] = frozenset({"file", "local"})
    marker_keys: ClassVar[tuple[str, ...]] = ("mtime", "ino")

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
