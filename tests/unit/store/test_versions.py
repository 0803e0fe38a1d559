"""Version names carry the publish time and the content hash: sorting the names must be
publish order, the current manifest must be matched to its version by hash, and a rollback
must go where ``history`` says it will (or refuse, naming the DAG)."""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from metaflow_airflow.errors import StoreError
from metaflow_airflow.store.versions import (
    Version,
    content_hash,
    is_version_name,
    new_version_name,
    rollback_target,
    version_with_hash,
    versions,
)

T0 = datetime(2026, 11, 22, 10, 15, 0, 123456, tzinfo=timezone.utc)
A, B, C = b'{"v": "a"}\n', b'{"v": "b"}\n', b'{"v": "c"}\n'


def published(*contents: bytes, start: datetime = T0) -> list[str]:
    """The sorted version names of ``contents`` published one minute apart."""
    return sorted(
        new_version_name(data, start + timedelta(minutes=i)) for i, data in enumerate(contents)
    )


# --- names ------------------------------------------------------------------------------------


def test_a_name_is_the_publish_time_and_the_start_of_the_content_hash() -> None:
    assert content_hash(A) == hashlib.sha256(A).hexdigest()
    assert new_version_name(A, T0) == f"20261122T101500.123456Z-{content_hash(A)[:12]}"


def test_a_name_reads_back_as_its_time_and_hash() -> None:
    """``history`` shows the time the name holds, in UTC, to the microsecond."""
    (found,) = versions([new_version_name(A, T0)], None)
    assert found.created_at == T0 and found.created_at.tzinfo is not None
    assert found.content_hash == content_hash(A)[:12]
    assert found.current is False


@given(st.lists(st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(9999, 1, 1)),
                min_size=2, max_size=8, unique=True))
def test_names_sort_in_publish_order(moments: list[datetime]) -> None:
    """The store lists names and sorts them as text; that must be the order of publication,
    whatever the hashes (here the later publishes have the smaller hashes, some of them)."""
    moments = [m.replace(tzinfo=timezone.utc) for m in moments]
    names = {new_version_name(str(i).encode(), m): m for i, m in enumerate(moments)}
    assert [names[n] for n in sorted(names)] == sorted(moments)


@pytest.mark.parametrize(
    "stem",
    [
        "20261122T101500.123456Z-0123456789ab",
        "20261122T101500.000000Z-ffffffffffff",
    ],
)
def test_version_names_are_recognised(stem: str) -> None:
    assert is_version_name(stem)


@pytest.mark.parametrize(
    "stem",
    [
        "F",  # a current manifest
        "20261122T101500.123456Z-0123456789ab.json",
        "20261122T101500.123456Z-0123456789ab.json.sig",
        "20261122T101500Z-0123456789ab",  # no microseconds
        "20261122T101500.123456-0123456789ab",  # no Z
        "20261122T101500.123456Z-0123456789a",  # 11 hex digits
        "20261122T101500.123456Z-0123456789abc",  # 13
        "20261122T101500.123456Z-0123456789AB",  # upper case: not ours
        "20261122T101500.123456Z-0123456789ag",
        " 20261122T101500.123456Z-0123456789ab",
        "x20261122T101500.123456Z-0123456789ab",
        "",
    ],
)
def test_other_names_are_not_versions(stem: str) -> None:
    """Anything else in a versions folder (a stray upload, a signature) is no version."""
    assert not is_version_name(stem)


# --- which version is current ----------------------------------------------------------------


def test_the_current_manifest_marks_the_version_it_is_a_copy_of() -> None:
    names = published(A, B, C)
    assert [v.current for v in versions(names, B)] == [False, True, False]
    assert version_with_hash(names, B) == names[1]


def test_without_a_current_manifest_none_is_current() -> None:
    """After a delete the versions stay, none of them current."""
    names = published(A, B)
    assert [v.current for v in versions(names, None)] == [False, False]
    assert version_with_hash(names, None) is None


def test_a_current_manifest_of_no_version_marks_none() -> None:
    """A manifest written before versioning (or by hand) is no version."""
    names = published(A, B)
    assert [v.current for v in versions(names, C)] == [False, False]
    assert version_with_hash(names, C) is None


def test_bytes_equal_to_two_versions_are_the_newer_one() -> None:
    """The same bytes published twice: the newer version is the current one, and only it."""
    names = published(A, B, A)
    assert [v.current for v in versions(names, A)] == [False, False, True]
    assert version_with_hash(names, A) == names[2]


def test_a_hash_is_matched_in_all_its_digits() -> None:
    """Other bytes, or a name that differs in one digit of the hash, are no match."""
    (name,) = published(A)
    stamp, short = name.split("-")
    assert version_with_hash([name], A + b" ") is None
    for i in range(len(short)):
        other = short[:i] + ("0" if short[i] != "0" else "1") + short[i + 1 :]
        assert version_with_hash([f"{stamp}-{other}"], A) is None


def test_versions_keep_the_order_given() -> None:
    """The store sorts the names; ``versions`` keeps that order (oldest first in ``history``)."""
    names = published(A, B, C)
    assert [v.name for v in versions(names, None)] == names


# --- rollback ---------------------------------------------------------------------------------


def test_rollback_goes_to_the_version_before_the_current_one() -> None:
    found = versions(published(A, B, C), C)
    assert rollback_target("F", found, None) == found[1]


def test_rollback_after_a_rollback_goes_further_back() -> None:
    """A rollback adds no version: from B (current after a rollback from C), the next one is A."""
    found = versions(published(A, B, C), B)
    assert rollback_target("F", found, None) == found[0]


def test_rollback_after_a_delete_restores_the_newest_version() -> None:
    found = versions(published(A, B, C), None)
    assert rollback_target("F", found, None) == found[2]


def test_rollback_of_a_manifest_that_is_no_version_restores_the_newest_version() -> None:
    found = versions(published(A, B), C)
    assert rollback_target("F", found, None) == found[1]


def test_rollback_from_the_oldest_version_is_refused() -> None:
    found = versions(published(A, B), A)
    with pytest.raises(StoreError) as refused:
        rollback_target("F", found, None)
    assert str(refused.value) == "F: the current version is the oldest; nothing to roll back to"


def test_rollback_without_versions_is_refused() -> None:
    with pytest.raises(StoreError) as refused:
        rollback_target("F", [], None)
    assert str(refused.value) == "F has no stored versions to roll back to"


def test_rollback_to_a_named_version() -> None:
    found = versions(published(A, B, C), C)
    assert rollback_target("F", found, found[0].name) == found[0]


def test_rollback_to_a_hash_as_history_shows_it() -> None:
    found = versions(published(A, B, C), C)
    assert rollback_target("F", found, content_hash(A)[:12]) == found[0]


def test_rollback_to_a_hash_published_twice_is_the_newer_version() -> None:
    found = versions(published(A, B, A, C), C)
    assert rollback_target("F", found, content_hash(A)[:12]) == found[2]


def test_rollback_to_the_current_version_is_allowed() -> None:
    """Re-copying the current version is harmless (it also repairs a lost signature)."""
    found = versions(published(A, B), B)
    assert rollback_target("F", found, found[1].name) == found[1]


@pytest.mark.parametrize(
    "to",
    [
        "20991122T101500.123456Z-0123456789ab",
        "0123456789ab",
        content_hash(A)[:11],  # a prefix is not the hash
        "",
    ],
)
def test_rollback_to_an_unknown_version_is_refused(to: str) -> None:
    found = versions(published(A, B), B)
    with pytest.raises(StoreError) as refused:
        rollback_target("F", found, to)
    assert str(refused.value) == f"F has no version {to!r} (see `metaflow-airflow history`)"


def test_rollback_to_a_version_is_refused_when_there_are_none() -> None:
    with pytest.raises(StoreError, match=r"^F has no version '0123456789ab'"):
        rollback_target("F", [], "0123456789ab")


def test_a_version_is_a_value() -> None:
    """Versions compare by value (``rollback`` returns a copy marked current)."""
    (found,) = versions([new_version_name(A, T0)], A)
    assert found == Version(found.name, T0, content_hash(A)[:12], current=True)
    with pytest.raises(AttributeError):
        found.current = False  # type: ignore[misc]
