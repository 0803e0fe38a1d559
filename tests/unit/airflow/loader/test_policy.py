"""ServingPolicy: what a parse serves per DAG id, decided from the cache index, the listing and
the bytes read (docs/operations.md, "Failure behaviour"). Pure decisions, so no store and no
Airflow: a real ManifestCache in tmp_path and manifest bytes made here."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path

import pytest
from manifests import FOREACH_STEPS, make_manifest

from metaflow_airflow.airflow.loader.cache import CachedManifest, CacheEntry, ManifestCache
from metaflow_airflow.airflow.loader.fetcher import Blobs, Unavailable
from metaflow_airflow.airflow.loader.policy import Outcome, ServingPolicy
from metaflow_airflow.errors import ManifestError, StoreError
from metaflow_airflow.manifest.signing import SignatureCheck, sign, signature_check
from metaflow_airflow.settings import Settings
from metaflow_airflow.store.manifest_store import manifest_url
from metaflow_airflow.store.versions import content_hash

STORE = "file:///srv/flows"
KEY = b"k" * 32


def manifest_bytes(dag_id: str = "F", published_by: str = "tester") -> bytes:
    """A valid manifest's stored bytes; ``published_by`` makes another version of it."""
    manifest = make_manifest(FOREACH_STEPS).model_copy(
        update={"dag_id": dag_id, "published_by": published_by}
    )
    return manifest.to_json().encode()


def field_violation(dag_id: str = "F") -> bytes:
    document = json.loads(manifest_bytes(dag_id))
    document["steps"] = "not a list"
    return json.dumps(document).encode()


GOOD = manifest_bytes()
NEWER = manifest_bytes(published_by="someone else")
BROKEN = b'{"dag_id": "F", '


@pytest.fixture
def cache(tmp_path: Path) -> ManifestCache:
    return ManifestCache(tmp_path / "cache", f"{STORE} 0/1")


@pytest.fixture
def policy(cache: ManifestCache) -> ServingPolicy:
    return ServingPolicy(STORE, cache, strict=False, signatures=None)


def parse_once(
    policy: ServingPolicy, listing: Mapping[str, str], blobs: Blobs
) -> tuple[dict[str, CacheEntry], dict[str, CachedManifest]]:
    """One full parse from an empty cache, saved, then the index and cached manifests as the
    next parse loads them."""
    policy.save(policy.refresh(listing, blobs, {}, {}).entries)
    entries = policy.cache.load()
    return entries, policy.cached(entries)


def served(outcome: Outcome) -> str | None:
    """Who published the manifest an outcome runs (``None``: a placeholder)."""
    return None if outcome.manifest is None else outcome.manifest.manifest.published_by


# --- the listing and the cache ---------------------------------------------------------------


def test_an_unchanged_marker_serves_the_cached_manifest_and_confirms_it(
    policy: ServingPolicy,
) -> None:
    """No read needed; ``checked_at`` moves so that a task's parse may use the cache."""
    entries, cached = parse_once(policy, {"F": "m1"}, {"F": GOOD})
    old = replace(entries["F"], checked_at=1.0)
    before = time.time()

    decided = policy.refresh({"F": "m1"}, {}, {"F": old}, cached)

    assert decided.outcomes == {"F": Outcome(cached["F"], None)}
    entry = decided.entries["F"]
    assert (entry.marker, entry.good, entry.error) == ("m1", content_hash(GOOD), None)
    assert entry.checked_at >= before
    assert decided.reread == frozenset() and decided.unread == 0


def test_a_changed_manifest_read_and_valid_replaces_the_cached_one(
    policy: ServingPolicy, cache: ManifestCache
) -> None:
    entries, cached = parse_once(policy, {"F": "m1"}, {"F": GOOD})

    decided = policy.refresh({"F": "m2"}, {"F": NEWER}, entries, cached)

    entry = decided.entries["F"]
    assert (entry.marker, entry.good, entry.error) == ("m2", content_hash(NEWER), None)
    outcome = decided.outcomes["F"]
    assert outcome.error is None and served(outcome) == "someone else"
    assert outcome.manifest is not None and outcome.manifest.digest == content_hash(NEWER)
    assert cache.blob_path(content_hash(NEWER)).read_bytes() == NEWER  # kept for next time
    assert decided.reread == {"F"}


def test_a_new_marker_on_the_same_bytes_reuses_the_cached_manifest(
    policy: ServingPolicy,
) -> None:
    """A touch or a rollback to the cached version: nothing to parse or keep again."""
    entries, cached = parse_once(policy, {"F": "m1"}, {"F": GOOD})

    decided = policy.refresh({"F": "m2"}, {"F": GOOD}, entries, cached)

    assert decided.outcomes["F"] == Outcome(cached["F"], None)
    assert decided.entries["F"].marker == "m2"


@pytest.mark.parametrize(
    "bad",
    [BROKEN, field_violation(), manifest_bytes("G")],
    ids=["not-json", "field", "other-dag-id"],
)
def test_a_bad_manifest_keeps_its_last_good_version_and_is_not_read_again(
    policy: ServingPolicy, bad: bytes
) -> None:
    entries, cached = parse_once(policy, {"F": "m1"}, {"F": GOOD})

    decided = policy.refresh({"F": "m2"}, {"F": bad}, entries, cached)

    outcome = decided.outcomes["F"]
    assert outcome.manifest is cached["F"] and outcome.error
    entry = decided.entries["F"]
    assert (entry.marker, entry.good, entry.error) == ("m2", content_hash(GOOD), outcome.error)
    # Remembered: the next listing with the same marker needs no read, and still warns.
    assert policy.unchanged(entry, "m2", cached=True)
    again = policy.refresh({"F": "m2"}, {}, decided.entries, cached)
    assert again.outcomes["F"] == Outcome(cached["F"], outcome.error)


def test_a_bad_manifest_names_the_field(policy: ServingPolicy) -> None:
    decided = policy.refresh({"F": "m1"}, {"F": manifest_bytes("G")}, {}, {})

    assert decided.outcomes["F"].error == "field dag_id: 'G' does not match its file name 'F'"


def test_a_bad_manifest_without_a_good_version_has_no_manifest(policy: ServingPolicy) -> None:
    """Its DAG is a placeholder showing the error, until a valid manifest is published."""
    decided = policy.refresh({"F": "m1"}, {"F": BROKEN}, {}, {})

    outcome = decided.outcomes["F"]
    assert outcome.manifest is None and outcome.error
    assert decided.entries["F"] == CacheEntry(
        "m1", None, outcome.error, decided.entries["F"].checked_at
    )
    policy.save(decided.entries)
    entries = policy.cache.load()
    again = policy.refresh({"F": "m1"}, {}, entries, policy.cached(entries))
    assert again.outcomes["F"] == Outcome(None, outcome.error)


def test_publishing_a_good_version_clears_the_error(policy: ServingPolicy) -> None:
    entries, cached = parse_once(policy, {"F": "m1"}, {"F": BROKEN})

    decided = policy.refresh({"F": "m2"}, {"F": GOOD}, entries, cached)

    assert decided.outcomes["F"].error is None and served(decided.outcomes["F"]) == "tester"
    assert decided.entries["F"].error is None


@pytest.mark.parametrize("last_good", [True, False])
def test_a_failed_read_is_retried_on_the_next_parse(policy: ServingPolicy, last_good: bool) -> None:
    entries, cached = parse_once(policy, {"F": "m1"}, {"F": GOOD}) if last_good else ({}, {})

    decided = policy.refresh({"F": "m2"}, {"F": PermissionError("Access Denied")}, entries, cached)

    entry = decided.entries["F"]
    assert entry.marker == ""  # matches no listing: read again next time
    assert entry.error == "cannot be read: Access Denied"
    assert not policy.unchanged(entry, "m2", cached=last_good)
    assert decided.outcomes["F"] == Outcome(cached.get("F"), entry.error)
    assert entry.good == (content_hash(GOOD) if last_good else None)


def test_a_failed_read_of_the_signature_is_retried_on_the_next_parse(cache: ManifestCache) -> None:
    policy = ServingPolicy(STORE, cache, strict=False, signatures=SignatureCheck(KEY))
    blobs: Blobs = {"F": GOOD, "F.sig": PermissionError("Access Denied")}

    decided = policy.refresh({"F": "m1|sig:s1"}, blobs, {}, {})

    assert decided.outcomes["F"].manifest is None
    assert decided.entries["F"].marker == ""


def test_a_manifest_deleted_after_the_listing_is_dropped(policy: ServingPolicy) -> None:
    entries, cached = parse_once(policy, {"F": "m1"}, {"F": GOOD})

    decided = policy.refresh({"F": "m1"}, {"F": FileNotFoundError("F.json")}, entries, cached)

    assert "F" not in decided.entries and "F" not in decided.outcomes


def test_a_manifest_missing_from_the_listing_is_dropped(policy: ServingPolicy) -> None:
    """Only a successful listing removes a DAG: this is that listing."""
    entries, cached = parse_once(
        policy, {"F": "m1", "G": "m1"}, {"F": GOOD, "G": manifest_bytes("G")}
    )

    decided = policy.refresh({"F": "m1"}, {}, entries, cached)

    assert set(decided.entries) == set(decided.outcomes) == {"F"}


def test_a_changed_manifest_not_read_in_time_stays_as_cached(policy: ServingPolicy) -> None:
    """Counted in ``unread``; the entry keeps its old marker and time, so it is read next."""
    entries, cached = parse_once(policy, {"F": "m1", "E": "m1"}, {"F": GOOD, "E": BROKEN})

    decided = policy.refresh({"F": "m2", "E": "m2", "G": "m1"}, {}, entries, cached)

    assert decided.entries == {"F": entries["F"], "E": entries["E"]}
    assert decided.outcomes == {
        "F": Outcome(cached["F"], None),
        "E": Outcome(None, entries["E"].error),
    }
    assert decided.unread == 3  # G is new: nothing to serve until it is read
    assert decided.reread == frozenset()


def test_reread_names_the_dag_ids_read_this_parse(policy: ServingPolicy) -> None:
    """Their DAGs built from the cache earlier in the parse are stale."""
    entries, cached = parse_once(
        policy, {"F": "m1", "G": "m1"}, {"F": GOOD, "G": manifest_bytes("G")}
    )

    decided = policy.refresh(
        {"F": "m1", "G": "m2", "H": "m1"},
        {"G": manifest_bytes("G", "x"), "H": FileNotFoundError("H.json")},
        entries,
        cached,
    )

    assert decided.reread == {"G", "H"}


def test_a_cached_blob_altered_on_disk_is_not_served(
    policy: ServingPolicy, cache: ManifestCache
) -> None:
    """Its hash no longer matches: the entry is not up to date, so it is read again."""
    entries, _ = parse_once(policy, {"F": "m1"}, {"F": GOOD})
    cache.blob_path(content_hash(GOOD)).write_bytes(NEWER)

    cached = policy.cached(entries)

    assert cached == {}
    assert not policy.unchanged(entries["F"], "m1", cached=False)


def test_a_cached_blob_altered_on_disk_is_repaired_by_the_next_read(
    policy: ServingPolicy, cache: ManifestCache
) -> None:
    """docs/operations.md: such a blob "is ignored and read again"; once read, it is cached."""
    entries, _ = parse_once(policy, {"F": "m1"}, {"F": GOOD})
    cache.blob_path(content_hash(GOOD)).write_bytes(NEWER)
    cached = policy.cached(entries)

    decided = policy.refresh({"F": "m1"}, {"F": GOOD}, entries, cached)
    policy.save(decided.entries)

    entries = cache.load()
    assert set(policy.cached(entries)) == {"F"}


# --- strict mode -----------------------------------------------------------------------------


@pytest.fixture
def strict(cache: ManifestCache) -> ServingPolicy:
    return ServingPolicy(STORE, cache, strict=True, signatures=None)


@pytest.mark.parametrize(
    "blob", [BROKEN, PermissionError("Access Denied")], ids=["bad", "unreadable"]
)
def test_strict_raises_for_a_manifest_it_cannot_accept(
    strict: ServingPolicy, blob: bytes | OSError
) -> None:
    with pytest.raises(ManifestError) as raised:
        strict.refresh({"F": "m1"}, {"F": blob}, {}, {})
    assert raised.value.url == manifest_url(STORE, "F")


def test_strict_accepts_a_good_manifest(strict: ServingPolicy) -> None:
    decided = strict.refresh({"F": "m1"}, {"F": GOOD}, {}, {})

    assert served(decided.outcomes["F"]) == "tester"


def test_strict_raises_when_the_store_is_unavailable(strict: ServingPolicy) -> None:
    with pytest.raises(StoreError, match="unavailable: no answer"):
        strict.store_unavailable({}, {}, Unavailable("no answer within 1 s"))


def test_strict_raises_when_reads_are_unfinished(strict: ServingPolicy) -> None:
    with pytest.raises(StoreError, match="no answer"):
        strict.reads_unfinished(Unavailable("no answer within 1 s"), unread=3)


# --- the store unavailable -------------------------------------------------------------------


def test_a_store_that_fails_serves_the_cache_with_one_warning(
    policy: ServingPolicy, cache: ManifestCache, warnings_logged: list[logging.LogRecord]
) -> None:
    """Every cached DAG stays, a placeholder keeps its error; nothing is added or removed."""
    entries, _ = parse_once(
        policy,
        {"F": "m1", "G": "m1", "H": "m1"},
        {"F": GOOD, "G": BROKEN, "H": manifest_bytes("H")},
    )
    cache.blob_path(entries["H"].good or "").unlink()  # gone: nothing left to serve for H
    cached = policy.cached(entries)

    outcomes = policy.store_unavailable(entries, cached, Unavailable("ConnectionError: refused"))

    assert outcomes == {"F": Outcome(cached["F"], None), "G": Outcome(None, entries["G"].error)}
    assert len(warnings_logged) == 1
    message = warnings_logged[0].getMessage()
    assert warnings_logged[0].levelno == logging.WARNING
    assert f"the manifest store {STORE} is unavailable (ConnectionError: refused)" in message
    assert f"serving 2 DAG(s) from the last-known-good cache {cache.root}" in message


def test_unfinished_reads_warn_once_with_the_count(
    policy: ServingPolicy, warnings_logged: list[logging.LogRecord]
) -> None:
    policy.reads_unfinished(Unavailable("no answer within 1 s"), unread=3)

    assert len(warnings_logged) == 1
    assert "(no answer within 1 s); 3 changed or new manifest(s)" in (
        warnings_logged[0].getMessage()
    )


# --- signatures ------------------------------------------------------------------------------


@pytest.fixture
def signed(cache: ManifestCache) -> ServingPolicy:
    check = signature_check(Settings(require_signed=True, signing_key=KEY.decode()))
    assert check == SignatureCheck(KEY)
    return ServingPolicy(STORE, cache, strict=False, signatures=check)


def test_signed_mode_accepts_a_manifest_signed_with_the_key(signed: ServingPolicy) -> None:
    blobs: Blobs = {"F": GOOD, "F.sig": sign(GOOD, KEY).encode()}

    decided = signed.refresh({"F": "m1"}, blobs, {}, {})

    assert decided.outcomes["F"].error is None and served(decided.outcomes["F"]) == "tester"


@pytest.mark.parametrize(
    ("blobs", "error"),
    [
        ({"F": GOOD}, f"unsigned: no signature at {manifest_url(STORE, 'F')}.sig"),
        ({"F": GOOD, "F.sig": FileNotFoundError("F.json.sig")}, "unsigned: no signature"),
        ({"F": GOOD + b"\n", "F.sig": sign(GOOD, KEY).encode()}, "signature does not match"),
        ({"F": GOOD, "F.sig": sign(GOOD, b"o" * 32).encode()}, "signature does not match"),
    ],
    ids=["unsigned", "no-sidecar", "tampered", "other-key"],
)
def test_signed_mode_refuses_unsigned_and_tampered_manifests(
    signed: ServingPolicy, blobs: Blobs, error: str
) -> None:
    """The refused bytes are valid JSON: the signature is what refuses them."""
    entries, cached = parse_once(
        signed, {"F": "m1"}, {"F": GOOD, "F.sig": sign(GOOD, KEY).encode()}
    )

    decided = signed.refresh({"F": "m2"}, blobs, entries, cached)

    outcome = decided.outcomes["F"]
    assert outcome.manifest is cached["F"]  # the last good, signed one
    assert outcome.error is not None and outcome.error.startswith(error)


@pytest.mark.parametrize(
    ("settings", "problem"),
    [
        (Settings(require_signed=True), "require_signed is set but no signing key is configured"),
        (Settings(require_signed=True, signing_key="short"), "require_signed: the signing key"),
    ],
    ids=["no-key", "short-key"],
)
def test_signed_mode_without_a_usable_key_refuses_every_manifest(
    cache: ManifestCache, settings: Settings, problem: str
) -> None:
    check = signature_check(settings)
    policy = ServingPolicy(STORE, cache, strict=False, signatures=check)
    blobs: Blobs = {"F": GOOD, "F.sig": sign(GOOD, KEY).encode()}

    decided = policy.refresh({"F": "m1"}, blobs, {}, {})

    assert decided.outcomes["F"] == Outcome(None, check.problem)
    assert check.problem.startswith(problem)


# --- a task's parse --------------------------------------------------------------------------


def test_fresh_enough_only_for_a_usable_entry_confirmed_recently(
    policy: ServingPolicy,
) -> None:
    now = time.time()
    good = CacheEntry("m1", "abc", None, now - 30)
    placeholder = CacheEntry("m1", None, "field steps: broken", now - 30)

    assert policy.fresh_enough(good, cached=True, fresh_seconds=60)
    assert policy.fresh_enough(placeholder, cached=False, fresh_seconds=60)
    assert not policy.fresh_enough(good, cached=True, fresh_seconds=10)  # too old
    assert not policy.fresh_enough(good, cached=False, fresh_seconds=60)  # blob gone
    assert not policy.fresh_enough(None, cached=False, fresh_seconds=60)
    assert not policy.fresh_enough(good, cached=True, fresh_seconds=0)  # 0: always read


def test_a_single_read_accepts_against_the_known_marker(policy: ServingPolicy) -> None:
    """A task's parse has no listing: it keeps the entry's marker, so a changed manifest is
    read again by the next full parse."""
    entries, cached = parse_once(policy, {"F": "m1"}, {"F": GOOD})

    accepted = policy.accept("F", "m1", {"F": NEWER}, entries["F"], cached)

    assert accepted is not None
    entry, outcome = accepted
    assert (entry.marker, entry.good) == ("m1", content_hash(NEWER))
    assert served(outcome) == "someone else"
    assert (
        policy.accept("F", "m1", {"F": FileNotFoundError("F.json")}, entries["F"], cached) is None
    )


# --- a cache that cannot be written ----------------------------------------------------------


def test_an_unwritable_cache_folder_warns_once_and_still_serves(
    tmp_path: Path, warnings_logged: list[logging.LogRecord]
) -> None:
    """The manifest is kept in memory instead (not released after the DAG is built)."""
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    cache = ManifestCache(blocker, f"{STORE} 0/1")
    policy = ServingPolicy(STORE, cache, strict=False, signatures=None)

    decided = policy.refresh({"F": "m1", "G": "m1"}, {"F": GOOD, "G": manifest_bytes("G")}, {}, {})
    policy.save(decided.entries)

    assert set(decided.outcomes) == {"F", "G"}
    assert all(o.error is None for o in decided.outcomes.values())
    assert len(warnings_logged) == 1
    assert f"cannot write the manifest cache {cache.root}" in warnings_logged[0].getMessage()
    source = decided.outcomes["F"].manifest
    assert source is not None
    source.release()
    assert source.manifest.published_by == "tester"
