"""The dags folder as a versioned DAG bundle (Airflow 3), so that a run stays on its DAG.

Airflow 3 keeps a run on the DAG version it was created on only when the run has a bundle
version: a run of an unversioned bundle (the default dags folder) is moved onto the newest DAG
whenever the DAG changes, so a step that a publish renamed or removed while the run was in
progress is dropped from it, and the run fails. This bundle is a folder holding
``dags_loader.py`` (the dags folder by default), versioned by the state of the manifest store:
its version is a digest of one listing of the store's current manifests and of the folder's own
files, so each publish (or deletion), and each DAG file added to the folder, makes a new version
(Airflow looks for new files in a versioned bundle only when its version changes), and each run
records the version it was created on.

A worker given an older version parses the same loader file, for good reason: what a task runs
is its run's manifest version whatever the worker reads (``compute/run_version.py``), and a step
that only the run's version has is built from that stored version (``loader/versions.py``).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from pathlib import Path
from typing import Any

from metaflow_airflow.airflow.compat import bundle_version_answer
from metaflow_airflow.airflow.loader.fetcher import StoreFetcher, Unavailable
from metaflow_airflow.errors import StoreError
from metaflow_airflow.settings import get_settings

try:
    from airflow.dag_processing.bundles.local import LocalDagBundle
except ImportError as exc:  # pragma: no cover - exercised by the Airflow 2 tox environments
    raise ImportError(
        "metaflow_airflow.airflow.loader.bundle needs Airflow 3 (DAG bundles); on Airflow 2 "
        "keep dags_loader.py in the dags folder"
    ) from exc

log = logging.getLogger(__name__)


def bundle_version(listing: dict[str, str] | None, folder: Path) -> str:
    """The version of one store listing (DAG id → the marker of its current manifest; ``None``
    before the store ever answered) and of the files in ``folder`` (path, size, modification
    time of each)."""
    files = sorted(
        (str(path.relative_to(folder)), stat.st_size, stat.st_mtime_ns)
        for path, stat in _files(folder)
    )
    state = json.dumps({"manifests": listing, "files": files}, sort_keys=True)
    return f"manifests-{hashlib.sha256(state.encode()).hexdigest()[:20]}"


def _files(folder: Path) -> list[tuple[Path, os.stat_result]]:
    found = []
    for root, dirs, names in os.walk(folder):
        dirs[:] = [d for d in dirs if d != "__pycache__"]
        for name in names:
            path = Path(root, name)
            try:
                found.append((path, path.stat()))
            except OSError:  # removed meanwhile
                continue
    return found


class ManifestStoreBundle(LocalDagBundle):
    """A folder holding ``dags_loader.py``, versioned by the manifest store it reads.

    :param path: the folder (Airflow's dags folder when not given)
    :param store: the manifest store (``METAFLOW_AIRFLOW_STORE`` when not given)
    :param storage_options: fsspec options for it (``METAFLOW_AIRFLOW_STORAGE_OPTIONS``)
    """

    supports_versioning = True

    def __init__(
        self,
        *,
        store: str | None = None,
        storage_options: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        settings = get_settings()
        url = (store or settings.store or "").rstrip("/")
        options = settings.storage_options if storage_options is None else storage_options
        self._fetcher = StoreFetcher(url, options, settings, lambda _: True)
        self._listing: dict[str, str] | None = None

    @property
    def _remembered(self) -> Path:
        """The last listing this machine took: a DAG processor restarted while the store is
        down keeps it rather than starting a new version."""
        return self.base_dir / "store-listing.json"

    def refresh(self) -> None:
        """List the store once; when it cannot be listed, keep the last listing (one warning)."""
        if not self._fetcher.url:
            raise StoreError("no manifest store configured: set METAFLOW_AIRFLOW_STORE")
        try:
            self._listing = self._fetcher.listing()
        except (Unavailable, StoreError) as exc:
            log.warning(
                "metaflow-airflow: bundle %s keeps the store's last listing: cannot list %s: %s",
                self.name,
                self._fetcher.url,
                exc,
            )
            return
        try:
            self._remembered.parent.mkdir(parents=True, exist_ok=True)
            self._remembered.write_text(json.dumps(self._listing))
        except OSError as exc:
            log.warning("metaflow-airflow: cannot remember the store's listing: %s", exc)

    def get_current_version(self) -> Any:
        """The version of the last listing and of the folder as it is now (never ``None``:
        Airflow's DAG processor calls this outside its error handling, and a run without a
        version is not kept on its DAG)."""
        if self._listing is None:
            try:
                self.refresh()
            except StoreError as exc:
                log.warning("metaflow-airflow: bundle %s: %s", self.name, exc)
        if self._listing is None:
            self._listing = self._last_listing()
        return bundle_version_answer(bundle_version(self._listing, self.path))

    def _last_listing(self) -> dict[str, str] | None:
        try:
            listing = json.loads(self._remembered.read_text())
        except (OSError, ValueError):
            return None
        return listing if isinstance(listing, dict) else None
