"""What a parse serves for each DAG id: the manifest the store has now, the last good one from
the cache, or an error to show in place of the DAG; and, in strict mode, a raise instead.

The rules (docs/operations.md): only a successful listing removes a DAG; a store that fails or
is slow serves the cache with one warning; a manifest that fails the checks keeps its last
good version running (else its DAG shows the error); a read that failed is retried on the next
parse, a bad manifest is not read again until it changes. Pure decisions over the cache index,
the listing and the bytes read: no Airflow, no store requests.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, replace

from metaflow_airflow.airflow.loader.cache import (
    CachedManifest,
    CacheEntry,
    HashedManifest,
    ManifestCache,
)
from metaflow_airflow.airflow.loader.fetcher import Blobs, Unavailable
from metaflow_airflow.errors import ManifestError, StoreError
from metaflow_airflow.manifest.accept import unreadable
from metaflow_airflow.manifest.signing import SIGNATURE_SUFFIX, SignatureCheck
from metaflow_airflow.store.manifest_store import manifest_url

# The loader's one logger: its warnings and errors are what a parse reports.
LOGGER_NAME = "metaflow_airflow.airflow.loader"
log = logging.getLogger(LOGGER_NAME)


@dataclass(frozen=True)
class Outcome:
    """What to build for one DAG id: the manifest to run (the current one, or the last good
    one when ``error`` says what is wrong with the current one); no manifest: the error."""

    manifest: CachedManifest | None
    error: str | None


@dataclass(frozen=True)
class Refresh:
    """A full parse's decisions: the new cache index, what to build, which DAG ids were read
    again (their cached DAGs are stale), and how many changed manifests were not read."""

    entries: dict[str, CacheEntry]
    outcomes: dict[str, Outcome]
    reread: frozenset[str]
    unread: int


class ServingPolicy:
    """The rules above for one loader file: its store URL, cache and strictness."""

    def __init__(
        self,
        store_url: str,
        cache: ManifestCache,
        *,
        strict: bool,
        signatures: SignatureCheck | None,
    ) -> None:
        self.store_url = store_url
        self.cache = cache
        self.strict = strict
        self.signatures = signatures
        self._cache_warned = False

    # --- the cache -----------------------------------------------------------------------------

    def cached(self, entries: Mapping[str, CacheEntry]) -> dict[str, CachedManifest]:
        """The cached good manifests of ``entries`` that are still on disk and valid."""
        found = {}
        for dag_id, entry in entries.items():
            manifest = self.cache.manifest(dag_id, entry.good) if entry.good else None
            if manifest is not None:
                found[dag_id] = CachedManifest(self.cache, manifest, kept=True)
        return found

    @staticmethod
    def unchanged(entry: CacheEntry | None, marker: str, cached: bool) -> bool:
        """The cache is up to date for this DAG: same marker, and its good manifest is on disk."""
        return entry is not None and entry.marker == marker and (entry.good is None or cached)

    @staticmethod
    def as_cached(
        entries: Mapping[str, CacheEntry], cached: Mapping[str, CachedManifest]
    ) -> dict[str, Outcome]:
        """Every DAG of the cache as it was: its good manifest, or its error."""
        return {
            dag_id: Outcome(cached.get(dag_id), entry.error)
            for dag_id, entry in entries.items()
            if dag_id in cached or entry.error
        }

    @staticmethod
    def fresh_enough(entry: CacheEntry | None, cached: bool, fresh_seconds: float) -> bool:
        """A task's parse may use the cache without asking the store: the store confirmed the
        entry within ``fresh_seconds``, and its good manifest (if any) is on disk."""
        if entry is None or (entry.good is not None and not cached):
            return False
        return time.time() - entry.checked_at <= fresh_seconds

    def save(self, entries: dict[str, CacheEntry]) -> None:
        try:
            self.cache.save(entries)
        except OSError as exc:
            self._cache_unwritable(exc)

    # --- what the store said -------------------------------------------------------------------

    def refresh(
        self,
        listing: Mapping[str, str],
        blobs: Blobs,
        entries: Mapping[str, CacheEntry],
        cached: Mapping[str, CachedManifest],
    ) -> Refresh:
        """Merge a listing and the manifests read since with the cache."""
        now = time.time()
        fresh: dict[str, CacheEntry] = {}
        outcomes: dict[str, Outcome] = {}
        reread: set[str] = set()
        unread = 0
        for dag_id, marker in listing.items():
            old = entries.get(dag_id)
            if dag_id in blobs:
                reread.add(dag_id)
                accepted = self.accept(dag_id, marker, blobs, old, cached, now)
                if accepted is not None:
                    fresh[dag_id], outcomes[dag_id] = accepted
            elif self.unchanged(old, marker, dag_id in cached):
                fresh[dag_id] = replace(old, checked_at=now)  # type: ignore[type-var]
                outcomes[dag_id] = Outcome(cached.get(dag_id), old.error)  # type: ignore[union-attr]
            else:  # changed or new, not read in time: as cached (if at all) until read
                unread += 1
                if old is not None:
                    fresh[dag_id] = old
                    if dag_id in cached or old.error:
                        outcomes[dag_id] = Outcome(cached.get(dag_id), old.error)
        if self.signatures is not None:  # a deleted DAG's copy from its history is a replay
            for dag_id, old in entries.items():
                if dag_id not in listing and old.activated:
                    fresh[dag_id] = CacheEntry(
                        "", None, None, old.checked_at, old.activated, deleted=True
                    )
        return Refresh(fresh, outcomes, frozenset(reread), unread)

    def accept(
        self,
        dag_id: str,
        marker: str,
        blobs: Blobs,
        old: CacheEntry | None,
        cached: Mapping[str, CachedManifest],
        now: float | None = None,
    ) -> tuple[CacheEntry, Outcome] | None:
        """The manifest just read, accepted; a bad one keeps the last good one, if any;
        ``None``: deleted since it was listed."""
        now = time.time() if now is None else now
        url = manifest_url(self.store_url, dag_id)
        blob = blobs[dag_id]
        if isinstance(blob, FileNotFoundError):
            return None
        good = old.good if old else None
        newest = old.activated if old else ""
        try:
            parsed = HashedManifest.accept(
                blob,
                url,
                dag_id,
                signature=blobs.get(dag_id + SIGNATURE_SUFFIX),
                signatures=self.signatures,
            )
            if self.signatures is not None:
                refuse_replay(url, parsed.activated, newest, bool(old and old.deleted))
                newest = max(newest, parsed.activated)
            digest = parsed.content_hash
            manifest = cached.get(dag_id) if digest == good else None
            if manifest is None:
                manifest = CachedManifest(self.cache, parsed, kept=self._keep(parsed, blob))
        except Exception as exc:  # whatever a manifest holds stays its own DAG's problem
            if self.strict:
                raise
            detail = exc.detail if isinstance(exc, ManifestError) else f"{exc!r}"
            # A failed read is retried on the next parse; a bad manifest is not read again.
            signature = blobs.get(dag_id + SIGNATURE_SUFFIX)
            seen = "" if unreadable(blob) or unreadable(signature) else marker
            entry = CacheEntry(seen, good, detail, now, newest)
            return entry, Outcome(cached.get(dag_id), detail)
        return CacheEntry(marker, digest, None, now, newest), Outcome(manifest, None)

    def store_unavailable(
        self,
        entries: Mapping[str, CacheEntry],
        cached: Mapping[str, CachedManifest],
        problem: Unavailable,
    ) -> dict[str, Outcome]:
        """The store did not list: serve the cache as it is (strict: raise)."""
        if self.strict:
            raise StoreError(f"manifest store {self.store_url} unavailable: {problem}") from problem
        outcomes = self.as_cached(entries, cached)
        log.warning(
            "metaflow-airflow: the manifest store %s is unavailable (%s); serving %d DAG(s) from "
            "the last-known-good cache %s. No DAG is added, changed or removed until the store "
            "answers.",
            self.store_url,
            problem,
            len(outcomes),
            self.cache.root,
        )
        return outcomes

    def reads_unfinished(self, problem: Unavailable, unread: int) -> None:
        """The store listed but did not answer every read (strict: raise)."""
        if self.strict:
            raise StoreError(f"manifest store {self.store_url}: {problem}") from problem
        log.warning(
            "metaflow-airflow: the manifest store %s was listed but did not answer every read "
            "(%s); %d changed or new manifest(s) are read on the next parse, their DAGs stay as "
            "cached until then.",
            self.store_url,
            problem,
            unread,
        )

    # --- plumbing ------------------------------------------------------------------------------

    def _keep(self, manifest: HashedManifest, data: bytes) -> bool:
        try:
            self.cache.keep(manifest.content_hash, data)
        except OSError as exc:
            self._cache_unwritable(exc)
            return False
        return True

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


def refuse_replay(url: str, activated: str, newest: str, deleted: bool) -> None:
    """A signed manifest made current before the newest one accepted for its DAG (for a
    deleted DAG: not after it) is an old version copied back, not a publish or a rollback
    made with the key, both of which sign a new activation."""
    if activated < newest or (deleted and activated == newest):
        raise ManifestError(
            url,
            f"refused as a replay: its signature makes it current at {activated}, before "
            f"the version already accepted ({newest}); publish it again, or roll back to "
            "it, with the signing key",
        )
