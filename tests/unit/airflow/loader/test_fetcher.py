"""The fetcher: what a parse asks of the store (one listing of its own DAG ids, reads of only
what changed, in batches) and the bound on how long it waits (docs/operations.md, "the store
hangs"). Against a real ``file://`` store in tmp_path; Background with work that waits or
raises."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from manifests import FOREACH_STEPS, make_manifest

from metaflow_airflow.airflow.loader import fetcher as fetcher_module
from metaflow_airflow.airflow.loader.fetcher import (
    Background,
    Progress,
    StoreFetcher,
    Unavailable,
)
from metaflow_airflow.manifest.signing import verify
from metaflow_airflow.settings import Settings
from metaflow_airflow.store.clouds import local as local_cloud
from metaflow_airflow.store.manifest_store import ManifestStore

KEY = b"k" * 32
DAG_IDS = ["a", "b", "c", "d", "e"]


@pytest.fixture
def store(tmp_path: Path) -> ManifestStore:
    """Five published manifests; ``a`` and ``b`` signed."""
    store = ManifestStore(f"file://{tmp_path / 'store'}")
    for dag_id in DAG_IDS:
        manifest = make_manifest(FOREACH_STEPS).model_copy(update={"dag_id": dag_id})
        store.write(manifest, signing_key=KEY if dag_id in "ab" else None)
    return store


@pytest.fixture
def release() -> Iterator[threading.Event]:
    """Set at teardown: lets the threads of work that waits end."""
    event = threading.Event()
    yield event
    event.set()


@pytest.fixture
def hanging(
    monkeypatch: pytest.MonkeyPatch, release: threading.Event
) -> Callable[[str], None]:
    """Makes reading a DAG's manifest wait until teardown, like a store that accepts the
    request and never answers (a folder store itself never blocks: it reads no FIFO)."""
    blocked: set[str] = set()
    read = local_cloud.read_regular_file

    def read_or_hang(path: str) -> bytes | OSError:
        if Path(path).stem in blocked:
            release.wait()
        return read(path)

    monkeypatch.setattr(local_cloud, "read_regular_file", read_or_hang)
    return blocked.add


def fetcher_of(
    url: str,
    tmp_path: Path,
    owns: Callable[[str], bool] = lambda dag_id: True,
    **settings: object,
) -> StoreFetcher:
    return StoreFetcher(
        url, {}, Settings(store=url, cache_dir=tmp_path / "cache", **settings), owns
    )


def fetch_all(
    fetcher: StoreFetcher, is_unchanged: Callable[[str, str], bool] = lambda d, m: False
) -> Progress:
    """A full parse's fetch, the parse thread having validated its cache at once."""
    background, progress = fetcher.start(is_unchanged)
    progress.validated.set()
    background.result()
    return progress


# --- Background ------------------------------------------------------------------------------


def test_background_returns_the_value_of_its_work() -> None:
    assert Background(5, lambda: 42).result() == 42


def test_background_that_times_out_is_unavailable(release: threading.Event) -> None:
    """A hanging store never holds the parse past the timeout."""
    background = Background(0.05, lambda: release.wait(30))

    with pytest.raises(Unavailable, match=r"^no answer within 0\.05 s \(store_timeout_seconds\)$"):
        background.result()


def test_background_waits_from_its_start_not_from_result(release: threading.Event) -> None:
    """The parse builds the cached DAGs meanwhile; that time counts toward the timeout."""
    background = Background(0.2, lambda: release.wait(30))
    time.sleep(0.25)

    started = time.monotonic()
    with pytest.raises(Unavailable):
        background.result()
    assert time.monotonic() - started < 0.1


def test_background_whose_work_fails_is_unavailable_naming_the_error() -> None:
    error = ConnectionError("connection refused")

    def work() -> None:
        raise error

    with pytest.raises(Unavailable, match=r"^ConnectionError: connection refused$") as raised:
        Background(5, work).result()
    assert raised.value.__cause__ is error


# --- one full parse's fetch ------------------------------------------------------------------


def test_the_listing_holds_only_the_dag_ids_the_loader_owns(
    store: ManifestStore, tmp_path: Path
) -> None:
    """A shard lists the whole store but reads and serves only its own DAGs."""
    fetcher = fetcher_of(store.url, tmp_path, owns=lambda dag_id: dag_id in "bd")

    progress = fetch_all(fetcher)

    assert progress.listing == {d: m for d, m in store.listing().items() if d in "bd"}
    assert set(progress.blobs()) == {"b", "d"}


def test_only_changed_manifests_are_read(store: ManifestStore, tmp_path: Path) -> None:
    """``is_unchanged`` sees each owned id with its listing marker; unchanged ones cost no read."""
    asked: dict[str, str] = {}

    def is_unchanged(dag_id: str, marker: str) -> bool:
        asked[dag_id] = marker
        return dag_id != "c"

    progress = fetch_all(fetcher_of(store.url, tmp_path), is_unchanged)

    assert asked == store.listing()
    blobs = progress.blobs()
    assert list(blobs) == ["c"]
    assert blobs["c"] == store.fs.cat_file(f"{store.root}/manifests/c.json")


def test_changed_manifests_are_read_in_batches(
    store: ManifestStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """So that a parse cut short by the timeout keeps the batches read so far."""
    monkeypatch.setattr(fetcher_module, "READ_BATCH", 2)

    progress = fetch_all(fetcher_of(store.url, tmp_path))

    assert [sorted(batch) for batch in progress.batches] == [["a", "b"], ["c", "d"], ["e"]]
    assert sorted(progress.blobs()) == DAG_IDS


def test_a_fetch_cut_short_keeps_the_listing_and_the_batches_read(
    store: ManifestStore,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    hanging: Callable[[str], None],
) -> None:
    """The parse serves what was read and counts the rest as unread, read on the next parse."""
    monkeypatch.setattr(fetcher_module, "READ_BATCH", 2)
    hanging("e")
    fetcher = fetcher_of(store.url, tmp_path, store_timeout_seconds=1.0)
    background, progress = fetcher.start(lambda d, m: False)
    progress.validated.set()

    with pytest.raises(Unavailable, match="no answer within 1 s"):
        background.result()
    assert progress.listing is not None and sorted(progress.listing) == DAG_IDS
    assert sorted(progress.blobs()) == ["a", "b", "c", "d"]


def test_reads_wait_for_the_parse_to_validate_its_cache(
    store: ManifestStore, tmp_path: Path
) -> None:
    """Until then ``is_unchanged`` cannot know what is cached; a parse that stops waiting
    still has the listing."""
    background, progress = fetcher_of(store.url, tmp_path, store_timeout_seconds=0.5).start(
        lambda d, m: False
    )

    with pytest.raises(Unavailable, match="no answer within 0.5 s"):
        background.result()
    assert progress.opened.is_set()
    assert progress.listing == store.listing()
    assert progress.batches == []
    progress.validated.set()  # let the thread end


def test_an_empty_store_lists_nothing(tmp_path: Path) -> None:
    progress = fetch_all(fetcher_of(f"file://{tmp_path / 'empty'}", tmp_path))

    assert progress.listing == {} and progress.batches == []


def test_a_store_that_cannot_be_listed_is_unavailable_without_a_listing(
    tmp_path: Path,
) -> None:
    """A listing that failed removes no DAG: the parse serves its cache."""
    root = tmp_path / "looping"
    root.mkdir()
    (root / "manifests").symlink_to(root / "manifests")  # ELOOP: not "no such folder"
    background, progress = fetcher_of(f"file://{root}", tmp_path).start(lambda d, m: False)
    progress.validated.set()

    with pytest.raises(Unavailable, match=r"^StoreError: cannot list manifest store file://.*looping"):
        background.result()
    assert progress.opened.is_set()
    assert progress.listing is None


def test_a_store_that_cannot_be_opened_is_unavailable_and_says_so(tmp_path: Path) -> None:
    """``opened`` is set anyway: the parse thread waits on it."""
    background, progress = fetcher_of("nosuchprotocol://bucket/flows", tmp_path).start(
        lambda d, m: False
    )

    with pytest.raises(Unavailable, match=r"^StoreError: cannot open manifest store"):
        background.result()
    assert progress.opened.is_set()
    assert progress.listing is None


def test_each_fetch_opens_a_new_file_system(store: ManifestStore, tmp_path: Path) -> None:
    """Not fsspec's cached instance: a parse never waits on connections an earlier one left."""
    fetcher = fetcher_of(store.url, tmp_path)

    assert fetcher.open().fs is not fetcher.open().fs


# --- a task's parse --------------------------------------------------------------------------


def test_read_reads_one_manifest(store: ManifestStore, tmp_path: Path) -> None:
    fetcher = fetcher_of(store.url, tmp_path)

    blobs = fetcher.read(["a"])

    assert list(blobs) == ["a"]  # no signature asked for
    assert blobs["a"] == store.fs.cat_file(f"{store.root}/manifests/a.json")
    missing = fetcher.read(["zz"])["zz"]
    assert isinstance(missing, FileNotFoundError)


def test_read_reads_the_signature_when_signatures_are_required(
    store: ManifestStore, tmp_path: Path
) -> None:
    fetcher = fetcher_of(store.url, tmp_path, require_signed=True, signing_key=KEY.decode())

    signed = fetcher.read(["a"])
    unsigned = fetcher.read(["c"])

    assert isinstance(signed["a"], bytes)
    assert verify(signed["a"], signed["a.sig"], KEY)  # a signed activation
    assert isinstance(unsigned["c.sig"], FileNotFoundError)


def test_a_full_fetch_reads_signatures_when_signatures_are_required(
    store: ManifestStore, tmp_path: Path
) -> None:
    fetcher = fetcher_of(store.url, tmp_path, require_signed=True, signing_key=KEY.decode())

    blobs = fetch_all(fetcher, lambda dag_id, marker: dag_id != "b").blobs()

    assert set(blobs) == {"b", "b.sig"}
    assert verify(blobs["b"], blobs["b.sig"], KEY)  # type: ignore[arg-type]


def test_read_of_a_manifest_that_hangs_is_unavailable(
    store: ManifestStore, tmp_path: Path, hanging: Callable[[str], None]
) -> None:
    """A task's parse waits no longer than a full one."""
    hanging("c")
    fetcher = fetcher_of(store.url, tmp_path, store_timeout_seconds=0.2)

    with pytest.raises(Unavailable, match=r"no answer within 0\.2 s"):
        fetcher.read(["c"])


def test_read_of_a_store_that_cannot_be_opened_is_unavailable(tmp_path: Path) -> None:
    with pytest.raises(Unavailable, match="StoreError: cannot open manifest store"):
        fetcher_of("nosuchprotocol://bucket/flows", tmp_path).read(["a"])
