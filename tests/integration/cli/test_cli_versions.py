"""``history``, ``rollback``, ``delete`` and ``validate`` through the real click group, on a
local store (the store itself is tested on every cloud in test_store_versions.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from store_helpers import make_manifest, put_raw

from metaflow_airflow import ManifestStore
from metaflow_airflow.cli import cli

pytestmark = pytest.mark.timeout(120)

KEY = "v" * 32


@pytest.fixture
def store(tmp_path: Path) -> ManifestStore:
    store = ManifestStore(f"file://{tmp_path / 'store'}")
    for description in ("one", "two"):
        store.write(make_manifest(description=description))
    return store


def run(*args: str, code: int = 0) -> Result:
    result = CliRunner().invoke(cli, list(args))
    assert result.exit_code == code, result.output
    return result


def test_history_rollback_delete(store: ManifestStore) -> None:
    names = [v.name for v in store.history("Hello")]

    lines = run("history", "Hello", "--store", store.url).stdout.splitlines()
    assert [line.split("\t")[0] for line in lines] == [f"  {names[0]}", f"* {names[1]}"]

    assert run("rollback", "Hello", "--store", store.url).stdout == (
        f"Hello: current version {names[0]}\n"
    )
    assert store.read("Hello").description == "one"
    run("rollback", "Hello", "--to", names[1][-12:], "--store", store.url)
    assert store.read("Hello").description == "two"

    deleted = run("delete", "Hello", "--store", store.url)
    assert deleted.stdout == f"deleted {store.url}/manifests/Hello.json\n"
    assert "metaflow-airflow rollback Hello" in deleted.stderr
    assert store.list() == []
    assert "is deleted" in run("history", "Hello", "--store", store.url).stderr

    failed = run("rollback", "Hello", "--to", "nope", "--store", store.url, code=1)
    assert "has no version 'nope'" in str(failed.exception)


def test_validate_a_store(store: ManifestStore, monkeypatch: pytest.MonkeyPatch) -> None:
    assert run("validate", "--store", store.url).stdout == (
        f"ok\tHello\t{store.url}/manifests/Hello.json\n"
    )
    put_raw(store, "Broken", b'{"dag_id": ')
    monkeypatch.setenv("METAFLOW_AIRFLOW_STORE", store.url)  # the default store

    result = run("validate", code=1)

    assert f"invalid\t{store.url}/manifests/Broken.json: field (document): Invalid JSON" in (
        result.stderr
    )
    assert "ok\tHello" in result.stdout
    assert str(result.exception) == "1 of 2 manifests are invalid"


def test_validate_files_and_signatures(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    good = tmp_path / "good.json"
    good.write_text(make_manifest().to_json())
    future = tmp_path / "future.json"
    newer = make_manifest().to_json().replace('"schema_version": 1', '"schema_version": 7')
    future.write_text(newer)

    run("validate", str(good))
    result = run("validate", str(good), str(future), code=1)
    assert f"invalid\t{future}: field schema_version: 7 is newer" in result.stderr

    monkeypatch.setenv("METAFLOW_AIRFLOW_SIGNING_KEY", KEY)
    unsigned = run("validate", str(good), "--require-signed", code=1)
    assert f"{good}: unsigned" in unsigned.stderr
    store = ManifestStore(f"file://{tmp_path / 'signed'}")
    store.write(make_manifest(), signing_key=KEY.encode())
    run("validate", "--store", store.url, "--require-signed")


def test_validate_needs_a_store_or_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("METAFLOW_AIRFLOW_STORE", raising=False)
    assert "give --store URL" in run("validate", code=2).output
    manifest = tmp_path / "m.json"
    manifest.write_text(make_manifest().to_json())
    both = run("validate", str(manifest), "--store", f"file://{tmp_path}", code=2)
    assert "not both" in both.output
