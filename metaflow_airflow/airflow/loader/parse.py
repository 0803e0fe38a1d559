"""``load_dags()``: what the one ``dags_loader.py`` file in Airflow's dags folder calls.

A parse (a new process, every 30 s by default) lists the store once, reads and validates only
the manifests whose change marker moved since the local last-known-good cache (:mod:`.cache`),
then builds the DAGs. When Airflow parses to run one task, its parsing context names the DAG:
only that one is built, from the cache when it is fresh enough, else after one read.

It never raises by default, since Airflow would drop every DAG of the file: a store that is
unreachable, failing or slow (``store_timeout_seconds``) serves the cached DAGs with one warning,
and only a successful listing removes a DAG; a broken manifest affects its own DAG only (the
last good version keeps running, else a placeholder DAG shows the error). ``strict`` raises.
"""

from __future__ import annotations

import gc
import logging
import threading
import time
from collections.abc import Callable, Iterator, Mapping, MutableMapping
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import Any, Generic, TypeVar

from metaflow_airflow.airflow.loader.cache import CachedManifest, CacheEntry, HashedManifest, ManifestCache
from metaflow_airflow.airflow.compat import DAG, get_parsing_context
from metaflow_airflow.errors import ManifestError, MetaflowAirflowError, SigningKeyError, StoreError
from metaflow_airflow.airflow.dag.factory import build_dag
from metaflow_airflow.airflow.dag.placeholder import last_good_notice, placeholder_dag
from metaflow_airflow.settings import Settings, get_settings
from metaflow_airflow.airflow.loader.sharding import check_shard, shard_of
from metaflow_airflow.manifest.signing import SIGNATURE_SUFFIX, load_signing_key, verify
from metaflow_airflow.store.manifest_store import ManifestStore, content_hash, manifest_url

log = logging.getLogger(__name__)

# Manifests per bulk read: big enough for concurrency, small enough to keep progress on timeout.
_READ_BATCH = 200
# How long a full parse waits for the store's client before it builds the DAGs: it sets up in
# 0.1-0.2 s; one that takes longer (credentials from a metadata service that does not answer)
# finishes while the DAGs are built.
_OPEN_WAIT_SECONDS = 1.0

T = TypeVar("T")


def load_dags(
    target: MutableMapping[str, Any] | None = None,
    *,
    store: str | None = None,
    storage_options: Mapping[str, Any] | None = None,
    settings: Settings | None = None,
    shard: int = 0,
    shards: int = 1,
) -> dict[str, DAG]:
    """Build a DAG for every manifest in the store (of shard ``shard`` of ``shards``, split by
    a stable hash of the DAG id) and put them into ``target`` (the loader file's
    ``globals()``). Returns the DAGs by dag_id."""
    check_shard(shard, shards)
    settings = settings or get_settings()
    try:
        loader = _Loader(
            store or settings.store or "",
            settings.storage_options if storage_options is None else storage_options,
            settings,
            shard,
            shards,
        )
        wanted = get_parsing_context().dag_id
        with _collector_paused():
            dags = loader.only(wanted) if wanted else loader.everything()
    except MetaflowAirflowError as exc:
        if settings.strict:
            raise
        log.error("metaflow-airflow: cannot load Metaflow DAGs: %s", exc)
        return {}
    if target is not None:
        target.update(dags)
    return dags


@contextmanager
def _collector_paused() -> Iterator[None]:
    """Python's cyclic garbage collector off while DAGs are built: building a thousand DAGs
    makes millions of objects that all live on, and the collector would scan them again and
    again (a fifth of the parse). Whatever cycles become garbage meanwhile are collected when
    it resumes."""
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


@dataclass(frozen=True)
class _Outcome:
    """What to build for one DAG id: the manifest to run (the current one, or the last good
    one when ``error`` says what is wrong with the current one)."""

    manifest: CachedManifest | None
    error: str | None


class _Unavailable(Exception):
    """The store did not answer, or answered with an error."""


@dataclass
class _Progress:
    """What the parse thread and the store thread of a full parse share: the store thread says
    when its client is set up, the parse thread when it has validated the cached manifests; the
    store thread's listing and reads so far, which a parse that stops waiting takes as they are."""

    opened: threading.Event = field(default_factory=threading.Event)
    cached: dict[str, CachedManifest] = field(default_factory=dict)
    validated: threading.Event = field(default_factory=threading.Event)
    listing: dict[str, str] | None = None
    batches: list[dict[str, bytes | OSError]] = field(default_factory=list)

    def blobs(self) -> dict[str, bytes | OSError]:
        merged: dict[str, bytes | OSError] = {}
        for batch in list(self.batches):  # the thread may still be appending
            merged.update(batch)
        return merged


class _Loader:
    """One parse of one loader file: the store, its cache folder, and the rules above."""

    def __init__(
        self,
        url: str,
        storage_options: Mapping[str, Any],
        settings: Settings,
        shard: int,
        shards: int,
    ) -> None:
        if not url:
            raise StoreError(
                "no manifest store configured: set METAFLOW_AIRFLOW_STORE or pass store="
            )
        self.url = url.rstrip("/")
        self.storage_options = dict(storage_options)
        self.settings = settings
        self.shard, self.shards = shard, shards
        signed = " signed" if settings.require_signed else ""
        self.cache = ManifestCache(settings.cache_dir, f"{self.url} {shard}/{shards}{signed}")
        self._key, self._key_error = self._signing_key()
        self._cache_warned = False

    def owns(self, dag_id: str) -> bool:
        return self.shards == 1 or shard_of(dag_id, self.shards) == self.shard

    # --- what to build -----------------------------------------------------------------------

    def everything(self) -> dict[str, DAG]:
        """One listing; reads of what changed since the cache; the cache if the store fails.

        The store's client is set up first, while this thread waits: its imports and set-up
        wait for the interpreter lock after every file or socket access, so next to a thread
        building DAGs they would last as long as the building (0.2 s more per parse at 1,000
        flows). Then the cached manifests are validated and their DAGs built (usually all of
        them) while the store lists and reads what changed."""
        entries = self.cache.load()
        progress = _Progress()
        refresh = _Background(
            self.settings.store_timeout_seconds, lambda: self._fetch(entries, progress)
        )
        progress.opened.wait(_OPEN_WAIT_SECONDS)
        try:
            progress.cached.update(self._cached(entries))
        finally:
            progress.validated.set()
        cached = progress.cached
        ready = {
            dag_id: self._build(dag_id, _Outcome(cached[dag_id], None), release=True)
            for dag_id, entry in sorted(entries.items())
            if dag_id in cached and entry.error is None
        }
        try:
            refresh.result()
            unfinished = None
        except _Unavailable as exc:
            if progress.listing is None:
                return self._finish(self._serve_cache(entries, cached, exc), ready, release=True)
            unfinished = exc  # listed, but not everything read: keep what was
        fresh, outcomes, unread = self._merge(progress, entries, cached, ready)
        self._save(fresh)
        if unfinished is not None:
            self._unfinished(unfinished, unread)
        return self._finish(outcomes, ready, release=True)

    def _merge(
        self,
        progress: _Progress,
        entries: Mapping[str, CacheEntry],
        cached: Mapping[str, CachedManifest],
        ready: dict[str, DAG | None],
    ) -> tuple[dict[str, CacheEntry], dict[str, _Outcome], int]:
        """The new cache index, what to build (dropping from ``ready`` the DAGs whose manifest
        was read again), and how many changed manifests were not read in time."""
        assert progress.listing is not None
        blobs = progress.blobs()
        now = time.time()
        fresh: dict[str, CacheEntry] = {}
        outcomes: dict[str, _Outcome] = {}
        unread = 0
        for dag_id, marker in progress.listing.items():
            old = entries.get(dag_id)
            if dag_id in blobs:
                ready.pop(dag_id, None)
                accepted = self._accept(dag_id, marker, blobs, old, cached, now)
                if accepted is not None:
                    fresh[dag_id], outcomes[dag_id] = accepted
            elif old is not None and _unchanged(old, marker, dag_id in cached):
                fresh[dag_id] = replace(old, checked_at=now)
                outcomes[dag_id] = _Outcome(cached.get(dag_id), old.error)
            else:  # changed or new, not read in time: as cached (if at all) until read
                unread += 1
                if old is not None:
                    fresh[dag_id] = old
                    if dag_id in cached or old.error:
                        outcomes[dag_id] = _Outcome(cached.get(dag_id), old.error)
        return fresh, outcomes, unread

    def only(self, dag_id: str) -> dict[str, DAG]:
        """A task's parse: just ``dag_id``, from the cache if the store confirmed it within
        ``cache_fresh_seconds``, else after one read of its manifest."""
        if not self.owns(dag_id):
            return {}
        entries = self.cache.load()
        entry = entries.get(dag_id)
        known = {dag_id: entry} if entry else {}
        cached = self._cached(known)
        usable = entry is not None and (entry.good is None or dag_id in cached)
        if usable and time.time() - entry.checked_at <= self.settings.cache_fresh_seconds:
            return self._finish({dag_id: _Outcome(cached.get(dag_id), entry.error)}, {})
        signed = self.settings.require_signed
        try:
            blobs = _Background(
                self.settings.store_timeout_seconds,
                lambda: self._open_store().read_raw_many([dag_id], signatures=signed),
            ).result()
        except _Unavailable as exc:
            return self._finish(self._serve_cache(known, cached, exc), {})
        # The listing marker stays: if the manifest changed, the next listing differs from it.
        marker = entry.marker if entry else ""
        accepted = self._accept(dag_id, marker, blobs, entry, cached, time.time())
        if accepted is None:  # deleted from the store
            return {}
        entries[dag_id], outcome = accepted
        self._save(entries)
        return self._finish({dag_id: outcome}, {})

    def _fetch(self, entries: Mapping[str, CacheEntry], progress: _Progress) -> None:
        """In the store thread: the store's client, the listing, then (once the parse thread
        has validated the cached manifests) those that changed since the cache, in batches, so
        that a parse cut short by the timeout still keeps what it read."""
        try:
            store = self._open_store()
        finally:
            progress.opened.set()
        listing = {d: marker for d, marker in store.listing().items() if self.owns(d)}
        progress.listing = listing
        progress.validated.wait()
        changed = [
            d
            for d, marker in listing.items()
            if not _unchanged(entries.get(d), marker, d in progress.cached)
        ]
        for start in range(0, len(changed), _READ_BATCH):
            batch = changed[start : start + _READ_BATCH]
            signed = self.settings.require_signed
            progress.batches.append(store.read_raw_many(batch, signatures=signed))

    def _accept(
        self,
        dag_id: str,
        marker: str,
        blobs: Mapping[str, bytes | OSError],
        old: CacheEntry | None,
        cached: Mapping[str, CachedManifest],
        now: float,
    ) -> tuple[CacheEntry, _Outcome] | None:
        """Validate the manifest just read; a bad one keeps the last good one, if any."""
        url = manifest_url(self.url, dag_id)
        blob = blobs[dag_id]
        if isinstance(blob, FileNotFoundError):  # deleted since it was listed
            return None
        good = old.good if old else None
        try:
            if isinstance(blob, Exception):
                raise ManifestError(url, f"cannot be read: {blob}")
            self._verify(url, blob, blobs.get(dag_id + SIGNATURE_SUFFIX))
            digest = content_hash(blob)
            manifest = cached.get(dag_id) if digest == good else None
            if manifest is None:
                parsed = HashedManifest.parse(blob, url, dag_id, digest)
                manifest = CachedManifest(self.cache, parsed, kept=self._keep(digest, blob))
        except ManifestError as exc:
            if self.settings.strict:
                raise
            # A failed read is retried on the next parse; a bad manifest is not read again.
            seen = "" if isinstance(blob, Exception) else marker
            entry = CacheEntry(seen, good, exc.detail, now)
            return entry, _Outcome(cached.get(dag_id), exc.detail)
        return CacheEntry(marker, digest, None, now), _Outcome(manifest, None)

    def _unfinished(self, problem: _Unavailable, unread: int) -> None:
        if self.settings.strict:
            raise StoreError(f"manifest store {self.url}: {problem}") from problem
        log.warning(
            "metaflow-airflow: the manifest store %s was listed but did not answer every read "
            "(%s); %d changed or new manifest(s) are read on the next parse, their DAGs stay as "
            "cached until then.",
            self.url,
            problem,
            unread,
        )

    def _serve_cache(
        self,
        entries: Mapping[str, CacheEntry],
        cached: Mapping[str, CachedManifest],
        problem: _Unavailable,
    ) -> dict[str, _Outcome]:
        if self.settings.strict:
            raise StoreError(f"manifest store {self.url} unavailable: {problem}") from problem
        outcomes = {
            dag_id: _Outcome(cached.get(dag_id), entry.error)
            for dag_id, entry in entries.items()
            if dag_id in cached or entry.error
        }
        log.warning(
            "metaflow-airflow: the manifest store %s is unavailable (%s); serving %d DAG(s) from "
            "the last-known-good cache %s. No DAG is added, changed or removed until the store "
            "answers.",
            self.url,
            problem,
            len(outcomes),
            self.cache.root,
        )
        return outcomes

    # --- building ----------------------------------------------------------------------------

    def _finish(
        self,
        outcomes: Mapping[str, _Outcome],
        ready: Mapping[str, DAG | None],
        *,
        release: bool = False,
    ) -> dict[str, DAG]:
        """The DAGs of ``outcomes``, taking those already built from ``ready``."""
        dags = {}
        for dag_id, outcome in sorted(outcomes.items()):
            dag = ready[dag_id] if dag_id in ready else self._build(dag_id, outcome, release)
            if dag is not None:
                dags[dag_id] = dag
        return dags

    def _build(self, dag_id: str, outcome: _Outcome, release: bool = False) -> DAG | None:
        """One DAG, built on its own: its failure never hides the others. A full parse
        ``release``s the parsed manifest once the DAG is built (see :class:`CachedManifest`)."""
        url = manifest_url(self.url, dag_id)
        if outcome.error is not None and self.settings.strict:
            raise ManifestError(url, outcome.error)
        if outcome.manifest is None:
            assert outcome.error is not None
            log.error(
                "metaflow-airflow: %s: %s; DAG %s shows this error until a valid manifest "
                "is published",
                url,
                outcome.error,
                dag_id,
            )
            return self._placeholder(dag_id, url, outcome.error)
        source = outcome.manifest
        try:
            manifest = source.manifest
            dag = build_dag(manifest, url, source=source)
        except Exception as exc:  # one DAG's failure must not hide the others
            if self.settings.strict:
                raise
            log.error("metaflow-airflow: cannot build DAG %s from %s: %s", dag_id, url, exc)
            return self._placeholder(dag_id, url, f"cannot build the DAG: {exc}")
        finally:
            if release:
                source.release()
        if outcome.error is not None:
            log.warning(
                "metaflow-airflow: %s: %s; DAG %s keeps running its last valid manifest "
                "(published %s)",
                url,
                outcome.error,
                dag_id,
                manifest.published_at.isoformat(),
            )
            dag.doc_md = last_good_notice(url, outcome.error) + (dag.doc_md or "")
        return dag

    def _placeholder(self, dag_id: str, url: str, error: str) -> DAG | None:
        try:
            return placeholder_dag(dag_id, url, error)
        except Exception as exc:  # e.g. a file name that is not a valid DAG id
            log.error("metaflow-airflow: cannot show the error of %s as a DAG: %s", url, exc)
            return None

    # --- plumbing ----------------------------------------------------------------------------

    def _open_store(self) -> ManifestStore:
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

    def _cached(self, entries: Mapping[str, CacheEntry]) -> dict[str, CachedManifest]:
        found = {}
        for dag_id, entry in entries.items():
            manifest = self.cache.manifest(dag_id, entry.good) if entry.good else None
            if manifest is not None:
                found[dag_id] = CachedManifest(self.cache, manifest, kept=True)
        return found

    def _signing_key(self) -> tuple[bytes | None, str]:
        if not self.settings.require_signed:
            return None, ""
        try:
            key = load_signing_key()
        except SigningKeyError as exc:
            return None, f"require_signed: {exc}"
        if key is None:
            return None, (
                "require_signed is set but no signing key is configured "
                "(METAFLOW_AIRFLOW_SIGNING_KEY or METAFLOW_AIRFLOW_SIGNING_KEY_FILE)"
            )
        return key, ""

    def _verify(self, url: str, data: bytes, signature: bytes | OSError | None) -> None:
        if not self.settings.require_signed:
            return
        if self._key is None:
            raise ManifestError(url, self._key_error)
        verify(data, signature if isinstance(signature, bytes) else None, self._key, url=url)

    def _keep(self, digest: str, data: bytes) -> bool:
        try:
            self.cache.keep(digest, data)
        except OSError as exc:
            self._cache_unwritable(exc)
            return False
        return True

    def _save(self, entries: dict[str, CacheEntry]) -> None:
        try:
            self.cache.save(entries)
        except OSError as exc:
            self._cache_unwritable(exc)

    def _cache_unwritable(self, exc: OSError) -> None:
        if not self._cache_warned:
            self._cache_warned = True
            log.warning(
                "metaflow-airflow: cannot write the manifest cache %s (%s): every parse reads "
                "every manifest, and a store outage hides the DAGs; set "
                "METAFLOW_AIRFLOW_CACHE_DIR to a writable folder",
                self.cache.root,
                exc,
            )


def _unchanged(entry: CacheEntry | None, marker: str, cached: bool) -> bool:
    """The cache is up to date for this DAG: same marker, and its good manifest is on disk."""
    return entry is not None and entry.marker == marker and (entry.good is None or cached)


class _Background(Generic[T]):
    """``work()`` in a daemon thread, waited for until ``seconds`` after it started: a store
    that hangs must not hold the parse past Airflow's import timeout (the thread dies with the
    parse process), and the parse can build cached DAGs meanwhile."""

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
        self._thread.join(max(0.0, self._deadline - time.monotonic()))
        if self._thread.is_alive():
            raise _Unavailable(f"no answer within {self._seconds:g} s (store_timeout_seconds)")
        if "error" in self._outcome:
            error = self._outcome["error"]
            raise _Unavailable(f"{type(error).__name__}: {error}") from error
        return self._outcome["value"]
