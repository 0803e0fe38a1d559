"""Older versions of a manifest, for the runs that started on them.

A run stays on the manifest version its ``start`` task ran, whatever is published meanwhile
(:mod:`metaflow_airflow.airflow.compute.run_version`). Its later tasks read that version back
from the store's ``versions/`` folder, accepted exactly as the loader accepts a current manifest
(schema, checks, and the signature when ``require_signed``). And a worker's parse for a task that
the current manifest no longer has builds the DAG from the newest stored version that has it, so
that the task starts and then runs its run's version: a task queued before a publish renamed or
removed its step (or deleted the DAG), or one that Airflow 3 schedules from the DAG version its
run started on (a versioned DAG bundle; the dags folder is not one, see docs/operations.md).
"""

from __future__ import annotations

from collections.abc import Callable

from metaflow_airflow.airflow.compat import DAG
from metaflow_airflow.airflow.loader.cache import HashedManifest
from metaflow_airflow.airflow.loader.fetcher import Background, StoreFetcher
from metaflow_airflow.airflow.loader.policy import log
from metaflow_airflow.errors import ManifestError, StoreError
from metaflow_airflow.manifest.signing import signature_check
from metaflow_airflow.settings import Settings
from metaflow_airflow.store.manifest_store import ManifestStore

# How many stored versions a task's parse looks through for its task, newest first.
SEARCHED_VERSIONS = 20


# The store each DAG of this process was read from, by the manifest's DAG id: a loader file
# may name a store of its own (``load_dags(store=...)``), and a run's later tasks must read their
# version back from that store, not from ``METAFLOW_AIRFLOW_STORE``. A task runs in the process
# that parsed its DAG file (Airflow 3's task runner, Airflow 2's ``tasks run --raw``).
_STORES: dict[str, StoreFetcher] = {}


def remember_store(dag_id: str, fetcher: StoreFetcher) -> None:
    """Record that this process built ``dag_id`` from the store of ``fetcher``."""
    _STORES[dag_id] = fetcher


def store_of(dag_id: str, settings: Settings) -> StoreFetcher:
    """The store this process's loader read ``dag_id`` from; the settings' store
    (``METAFLOW_AIRFLOW_STORE``) if no loader of this process built it."""
    return _STORES.get(dag_id) or configured_store(settings)


def configured_store(settings: Settings) -> StoreFetcher:
    """The store of the settings (``METAFLOW_AIRFLOW_STORE``), as the loader reaches it."""
    if not settings.store:
        raise StoreError("no manifest store configured: set METAFLOW_AIRFLOW_STORE")
    url = settings.store.rstrip("/")
    return StoreFetcher(url, settings.storage_options, settings, lambda _: True)


def _accept(store: ManifestStore, settings: Settings, dag_id: str, version: str) -> HashedManifest:
    data, signature = store.read_version_raw(dag_id, version)
    signatures = signature_check(settings) if settings.require_signed else None
    url = store.version_url(dag_id, version)
    return HashedManifest.accept(data, url, dag_id, signature=signature, signatures=signatures)


def read_version(fetcher: StoreFetcher, dag_id: str, digest: str) -> HashedManifest:
    """The stored version of ``dag_id`` whose bytes have the SHA-256 ``digest``, accepted;
    :class:`~.fetcher.Unavailable` (naming the cause) if it is gone, unreadable or refused."""
    settings = fetcher.settings

    def read() -> HashedManifest:
        store = fetcher.open()
        names = [n for n in store.version_names(dag_id) if n.endswith(f"-{digest[:12]}")]
        if not names:
            raise StoreError(
                f"{dag_id}: the store has no version {digest[:12]} any more (the version this "
                f"run started with) in {store.url}"
            )
        manifest = _accept(store, settings, dag_id, names[-1])
        if manifest.content_hash != digest:
            raise ManifestError(
                store.version_url(dag_id, names[-1]), f"its SHA-256 is not {digest}"
            )
        return manifest

    return Background(settings.store_timeout_seconds, read).result()


def dag_with_task(
    fetcher: StoreFetcher,
    dag_id: str,
    task_id: str,
    build: Callable[[HashedManifest, str], DAG],
) -> DAG | None:
    """The DAG of the newest stored version of ``dag_id`` that has ``task_id`` (``None``: no
    version has it, or the store cannot say)."""

    def search() -> DAG | None:
        store = fetcher.open()
        for version in reversed(store.version_names(dag_id)[-SEARCHED_VERSIONS:]):
            try:
                manifest = _accept(store, fetcher.settings, dag_id, version)
                dag = build(manifest, store.version_url(dag_id, version))
            except Exception as exc:  # noqa: BLE001 - a bad version must not hide an older one
                log.warning("metaflow-airflow: skipping %s: %s", version, exc)
                continue
            if task_id in dag.task_dict:
                return dag
        return None

    return Background(fetcher.settings.store_timeout_seconds, search).result()
