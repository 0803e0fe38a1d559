"""What a parse fetches from the store, in a thread of its own: the store's client, one
listing, and bulk reads of what changed, all bounded by ``store_timeout_seconds``.

A store that hangs must not hold the parse past Airflow's import timeout (the thread dies with
the parse process), and the parse builds the cached DAGs while the store answers.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from metaflow_airflow.settings import Settings
from metaflow_airflow.store.manifest_store import ManifestStore

# Manifests per bulk read: big enough for concurrency, small enough to keep progress on timeout.
READ_BATCH = 200

T = TypeVar("T")
Blobs = dict[str, "bytes | OSError"]


class Unavailable(Exception):
    """The store did not answer in time, or answered with an error."""


class Background(Generic[T]):
    """``work()`` in a daemon thread, waited for until ``seconds`` after it started."""

    def __init__(self, seconds: float, work: Callable[[], T]) -> None:
        self._seconds = seconds
        self._deadline = time.monotonic() + seconds
        self._outcome: dict[str, Any] = {}
        self._thread = threading.Thread(
            target=self._run, args=(work,), name="metaflow-airflow-store", daemon=True
        )
        self._thread.start()

    def _run(self, work: Callable[[], T]) -> None:
        try:
            self._outcome["value"] = work()
        except BaseException as exc:  # handed to the parse thread by result()
            self._outcome["error"] = exc

    def result(self) -> T:
        """The work's value; :class:`Unavailable` if it failed or is still running."""
        self._thread.join(max(0.0, self._deadline - time.monotonic()))
        if self._thread.is_alive():
            raise Unavailable(f"no answer within {self._seconds:g} s (store_timeout_seconds)")
        if "error" in self._outcome:
            error = self._outcome["error"]
            raise Unavailable(f"{type(error).__name__}: {error}") from error
        return self._outcome["value"]


@dataclass
class Progress:
    """What the parse thread and the store thread of a full parse share: the store thread says
    when its client is set up, the parse thread when it has validated the cached manifests;
    the store thread's listing and reads so far, which a parse that stops waiting takes as
    they are."""

    opened: threading.Event = field(default_factory=threading.Event)
    validated: threading.Event = field(default_factory=threading.Event)
    listing: dict[str, str] | None = None
    batches: list[Blobs] = field(default_factory=list)

    def blobs(self) -> Blobs:
        merged: Blobs = {}
        for batch in list(self.batches):  # the thread may still be appending
            merged.update(batch)
        return merged


class StoreFetcher:
    """The store of one loader file, as its parses reach it."""

    def __init__(
        self,
        url: str,
        storage_options: Mapping[str, Any],
        settings: Settings,
        owns: Callable[[str], bool],
    ) -> None:
        self.url = url
        self.storage_options = dict(storage_options)
        self.settings = settings
        self.owns = owns

    def open(self) -> ManifestStore:
        """Called in the store thread: opening may import a client or ask Airflow for a
        connection, both of which can be slow. A new file system object (not fsspec's cached
        one), so that a parse never waits on connections an earlier one left hanging."""
        options = {**self.storage_options, "skip_instance_cache": True}
        if self.settings.conn_id:
            from metaflow_airflow.airflow.connections import storage_options_from_connection

            protocol = self.url.split("://", 1)[0] if "://" in self.url else "file"
            connection = storage_options_from_connection(self.settings.conn_id, protocol)
            options = {**connection, **options}
        return ManifestStore(self.url, options)

    def start(self, is_unchanged: Callable[[str, str], bool]) -> tuple[Background[None], Progress]:
        """A full parse's fetch, started: the client, the listing, then (once the parse thread
        has set ``progress.validated``) the manifests for which ``is_unchanged(dag_id,
        marker)`` is false, in batches, so that a parse cut short keeps what it read."""
        progress = Progress()

        def fetch() -> None:
            try:
                store = self.open()
            finally:
                progress.opened.set()
            listing = {d: marker for d, marker in store.listing().items() if self.owns(d)}
            progress.listing = listing
            progress.validated.wait()
            changed = [d for d, marker in listing.items() if not is_unchanged(d, marker)]
            for start in range(0, len(changed), READ_BATCH):
                batch = changed[start : start + READ_BATCH]
                progress.batches.append(self._read(store, batch))

        return Background(self.settings.store_timeout_seconds, fetch), progress

    def listing(self) -> dict[str, str]:
        """One listing of the current manifests (DAG id → marker), within the timeout: what a
        versioned DAG bundle's version is made of (``loader/bundle.py``)."""
        return Background(
            self.settings.store_timeout_seconds, lambda: self.open().listing()
        ).result()

    def read(self, dag_ids: list[str]) -> Blobs:
        """Some manifests (and their signatures), within the timeout: a task's parse reads
        its own; a full parse reads again those whose signature did not match."""
        return Background(
            self.settings.store_timeout_seconds, lambda: self._read(self.open(), dag_ids)
        ).result()

    def _read(self, store: ManifestStore, dag_ids: list[str]) -> Blobs:
        return store.read_raw_many(dag_ids, signatures=self.settings.require_signed)
