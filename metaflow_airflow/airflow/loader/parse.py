"""``load_dags()``: what the one ``dags_loader.py`` file in Airflow's dags folder calls.

A parse (a new process, every 30 s by default) lists the store once, reads and accepts only
the manifests whose change marker moved since the local last-known-good cache (:mod:`.cache`),
then builds the DAGs. When Airflow parses to run one task, its parsing context names the DAG:
only that one is built, from the cache when it is fresh enough, else after one read.

It never raises by default, since Airflow would drop every DAG of the file: what is served when
the store or a manifest fails is the :mod:`.policy`'s decision, what is fetched and how long it
may take is the :mod:`.fetcher`'s; this module builds the DAGs. ``strict`` raises.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator, Mapping, MutableMapping
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

from metaflow_airflow.airflow.compat import DAG, check_as_the_dag_processor, get_parsing_context
from metaflow_airflow.airflow.dag.factory import build_dag
from metaflow_airflow.airflow.dag.placeholder import last_good_notice, placeholder_dag
from metaflow_airflow.airflow.loader.cache import CachedManifest, CacheEntry, ManifestCache
from metaflow_airflow.airflow.loader.fetcher import StoreFetcher, Unavailable
from metaflow_airflow.airflow.loader.policy import Outcome, Refresh, ServingPolicy, log
from metaflow_airflow.airflow.loader.sharding import check_shard, shard_of
from metaflow_airflow.airflow.loader.versions import dag_with_task, remember_store
from metaflow_airflow.errors import ManifestError, MetaflowAirflowError, StoreError
from metaflow_airflow.manifest.models import FlowManifest
from metaflow_airflow.manifest.signing import MISMATCH, signature_check
from metaflow_airflow.settings import Settings, get_settings
from metaflow_airflow.store.objects import manifest_url, shown_url

# How long a full parse waits for the store's client before it builds the DAGs: it usually
# sets up at once; one that takes longer (credentials from a metadata service that does not
# answer) finishes while the DAGs are built.
_OPEN_WAIT_SECONDS = 1.0


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
        context = get_parsing_context()
        wanted = context.dag_id
        prefix = settings.dag_id_prefix
        with _collector_paused():
            if not wanted:
                dags = loader.everything()
            elif wanted.startswith(prefix):  # a task's parse: only its DAG
                dags = loader.only(wanted[len(prefix) :])
                if context.task_id:
                    dags = loader.with_task(dags, wanted[len(prefix) :], context.task_id)
            else:  # not one of the store's
                dags = {}
    except MetaflowAirflowError as exc:
        if settings.strict:
            raise
        log.error("metaflow-airflow: cannot load Metaflow DAGs: %s", exc)
        return {}
    if target is not None:
        target.update(dags)
        if not wanted and target.get("__file__"):
            _warn_about_clashes(Path(str(target["__file__"])), dags)
    return dags


def _warn_about_clashes(own_file: Path, dags: Mapping[str, DAG]) -> None:
    """Warn about DAG files of Airflow's dags folder that name a published DAG id (see
    :mod:`.clashes`); a failure here never fails the parse."""
    from airflow import settings as airflow_settings

    from metaflow_airflow.airflow.loader.clashes import warn_about_clashes

    folder = Path(airflow_settings.DAGS_FOLDER or own_file.parent)
    if folder not in own_file.parents:
        folder = own_file.parent
    try:
        warn_about_clashes(folder, dags, own_file)
    except OSError as exc:  # a folder it cannot read: a warning, not a broken file
        log.warning("metaflow-airflow: cannot look for DAG id clashes in %s: %s", folder, exc)


@contextmanager
def _collector_paused() -> Iterator[None]:
    """Python's cyclic garbage collector off while DAGs are built: building a thousand DAGs
    makes millions of objects that all live on, and the collector would scan them again and
    again (docs/performance.md). Whatever cycles become garbage meanwhile are collected when
    it resumes."""
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


class _Loader:
    """One parse of one loader file: fetch what changed, decide what to serve, build it."""

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
        self.url = shown_url(url.rstrip("/"))  # the store as messages and DAG docs show it
        self.settings = settings
        self.shard, self.shards = shard, shards
        signed = " signed" if settings.require_signed else ""
        key = f"{url.rstrip('/')} {shard}/{shards}{signed}"  # hashed into a folder name
        cache = ManifestCache(settings.cache_dir, key)
        self.policy = ServingPolicy(
            self.url,
            cache,
            strict=settings.strict,
            signatures=signature_check(settings) if settings.require_signed else None,
        )
        self.fetcher = StoreFetcher(url.rstrip("/"), storage_options, settings, self.owns)

    def owns(self, dag_id: str) -> bool:
        return self.shards == 1 or shard_of(dag_id, self.shards) == self.shard

    def everything(self) -> dict[str, DAG]:
        """One listing; reads of what changed since the cache; the cache if the store fails.

        The store's client is set up first, while this thread waits: next to a thread building
        DAGs, its imports and set-up would wait for the interpreter lock after every file or
        socket access and last as long as the building. Then the cached manifests are
        validated and their DAGs built (usually all of them) while the store lists and reads
        what changed."""
        entries = self.policy.cache.load()
        cached: dict[str, CachedManifest] = {}
        unchanged = self.policy.unchanged
        refresh, progress = self.fetcher.start(
            lambda dag_id, marker: unchanged(entries.get(dag_id), marker, dag_id in cached)
        )
        progress.opened.wait(_OPEN_WAIT_SECONDS)
        try:
            cached.update(self.policy.cached(entries))
        finally:
            progress.validated.set()
        ready = {
            dag_id: self._build(dag_id, Outcome(cached[dag_id], None), release=True)
            for dag_id, entry in sorted(entries.items())
            if dag_id in cached and entry.error is None
        }
        try:
            refresh.result()
            unfinished = None
        except Unavailable as exc:
            if progress.listing is None:
                outcomes = self.policy.store_unavailable(entries, cached, exc)
                return self._finish(outcomes, ready, release=True)
            unfinished = exc  # listed, but not everything read: keep what was
        decided = self.policy.refresh(progress.listing, progress.blobs(), entries, cached)
        decided = self._read_torn_again(decided, progress.listing, entries, cached)
        self.policy.save(decided.entries)
        if unfinished is not None:
            self.policy.reads_unfinished(unfinished, decided.unread)
        fresh_ready = {d: dag for d, dag in ready.items() if d not in decided.reread}
        return self._finish(decided.outcomes, fresh_ready, release=True)

    def only(self, dag_id: str) -> dict[str, DAG]:
        """A task's parse: just ``dag_id``, from the cache if the store confirmed it within
        ``cache_fresh_seconds``, else after one read of its manifest."""
        if not self.owns(dag_id):
            return {}
        entries = self.policy.cache.load()
        entry = entries.get(dag_id)
        known: dict[str, CacheEntry] = {dag_id: entry} if entry else {}
        cached = self.policy.cached(known)
        if self.policy.fresh_enough(entry, dag_id in cached, self.settings.cache_fresh_seconds):
            return self._finish(self.policy.as_cached(known, cached), {})
        # The listing marker stays: if the manifest changed, the next listing differs from it.
        marker = entry.marker if entry else ""
        accepted = None
        for _ in range(2):  # a second read if the first met a publish halfway (see below)
            try:
                blobs = self.fetcher.read([dag_id])
            except Unavailable as exc:
                return self._finish(self.policy.store_unavailable(known, cached, exc), {})
            accepted = self.policy.accept(dag_id, marker, blobs, entry, cached)
            if accepted is None or not _torn(accepted[1]):
                break
        if accepted is None:  # deleted from the store
            return {}
        entries[dag_id], outcome = accepted
        self.policy.save(entries)
        return self._finish({dag_id: outcome}, {})

    def with_task(self, dags: dict[str, DAG], dag_id: str, task_id: str) -> dict[str, DAG]:
        """A worker's parse for a task the current manifest does not have (a run that started
        on an older version): the DAG of the newest stored version that has it (see
        :mod:`.versions`); the task then runs its run's version."""
        prefix = self.settings.dag_id_prefix
        dag = dags.get(prefix + dag_id)
        if not self.owns(dag_id) or (dag is not None and task_id in dag.task_dict):
            return dags

        def build(manifest: FlowManifest, url: str) -> DAG:
            return build_dag(manifest, url, dag_id_prefix=prefix)

        try:
            older = dag_with_task(self.fetcher, dag_id, task_id, build)
        except Unavailable as exc:
            log.warning("metaflow-airflow: cannot read the versions of %s: %s", dag_id, exc)
            return dags
        return dags if older is None else {**dags, older.dag_id: older}

    def _read_torn_again(
        self,
        decided: Refresh,
        listing: Mapping[str, str],
        entries: Mapping[str, CacheEntry],
        cached: Mapping[str, CachedManifest],
    ) -> Refresh:
        """A manifest and its signature are two objects: read while a publish replaced them,
        a pair can mismatch. Those are read once more before they count as altered."""
        torn = sorted(dag_id for dag_id, outcome in decided.outcomes.items() if _torn(outcome))
        if not torn:
            return decided
        try:
            blobs = self.fetcher.read(torn)
        except Unavailable:
            return decided
        fresh, outcomes = dict(decided.entries), dict(decided.outcomes)
        for dag_id in torn:
            old = entries.get(dag_id)
            accepted = self.policy.accept(dag_id, listing[dag_id], blobs, old, cached)
            if accepted is None:
                fresh.pop(dag_id, None)
                outcomes.pop(dag_id, None)
            else:
                fresh[dag_id], outcomes[dag_id] = accepted
        return replace(decided, entries=fresh, outcomes=outcomes)

    # --- building ----------------------------------------------------------------------------

    def _finish(
        self,
        outcomes: Mapping[str, Outcome],
        ready: Mapping[str, DAG | None],
        *,
        release: bool = False,
    ) -> dict[str, DAG]:
        """The DAGs of ``outcomes``, taking those already built from ``ready``."""
        dags = {}
        for dag_id, outcome in sorted(outcomes.items()):
            dag = ready[dag_id] if dag_id in ready else self._build(dag_id, outcome, release)
            if dag is not None:
                dags[dag.dag_id] = dag  # the DAG id after the setting's prefix
        return dags

    def _build(self, dag_id: str, outcome: Outcome, release: bool = False) -> DAG | None:
        """One DAG, built on its own: its failure never hides the others. A full parse
        ``release``s the parsed manifest once the DAG is built (see ``CachedManifest``)."""
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
            dag = build_dag(manifest, url, source=source, dag_id_prefix=self.settings.dag_id_prefix)
            check_as_the_dag_processor(dag)
            remember_store(dag_id, self.fetcher)
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
            return placeholder_dag(self.settings.dag_id_prefix + dag_id, url, error)
        except Exception as exc:  # e.g. a file name that is not a valid DAG id
            log.error("metaflow-airflow: cannot show the error of %s as a DAG: %s", url, exc)
            return None


def _torn(outcome: Outcome) -> bool:
    return bool(outcome.error and outcome.error.startswith(MISMATCH))
