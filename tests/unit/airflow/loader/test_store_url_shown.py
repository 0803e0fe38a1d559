"""A store URL's password is never shown: fsspec takes credentials as URL user information
(``ftp://user:password@host``), and the loader puts the store's URL into every DAG's
documentation, every placeholder and every warning (they reach the Airflow UI and its logs)."""

from __future__ import annotations

import logging
import uuid
from pathlib import Path

import pytest
from manifests import FOREACH_STEPS, make_manifest

from metaflow_airflow import ManifestStore
from metaflow_airflow.airflow.loader.parse import load_dags
from metaflow_airflow.settings import Settings
from metaflow_airflow.store.objects import shown_url

SECRET = "s3cret-" + uuid.uuid4().hex[:8]


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        (f"ftp://user:{SECRET}@host:21/flows", "ftp://user:***@host:21/flows"),
        (f"sftp://{SECRET}@host/flows", "sftp://***@host/flows"),
        (f"memory://a:b@c:{SECRET}@bucket/x", "memory://a:***@bucket/x"),
        ("s3://bucket/flows", "s3://bucket/flows"),
        ("file:///srv/flows@2", "file:///srv/flows@2"),
    ],
)
def test_shown_url_hides_the_password(url: str, shown: str) -> None:
    assert shown_url(url) == shown


def test_dag_docs_placeholders_and_messages_show_no_password(
    tmp_path: Path, warnings_logged: list[logging.LogRecord]
) -> None:
    url = f"memory://reader:{SECRET}@bucket-{uuid.uuid4().hex[:8]}/flows"
    store = ManifestStore(url)
    store.write(make_manifest(FOREACH_STEPS).model_copy(update={"dag_id": "good"}))
    store.fs.pipe_file(f"{store.root}/manifests/broken.json", b"{")
    assert SECRET not in store.url and SECRET not in store.manifest_url("good")

    dags = load_dags(settings=Settings(store=url, cache_dir=tmp_path / "cache"))

    assert sorted(dags) == ["broken", "good"]
    assert "memory://reader:***@" in dags["good"].doc_md
    assert all(SECRET not in (dag.doc_md or "") + (dag.description or "") for dag in dags.values())
    assert warnings_logged and all(SECRET not in r.getMessage() for r in warnings_logged)


def test_an_unreachable_store_is_reported_without_its_password(
    tmp_path: Path, warnings_logged: list[logging.LogRecord]
) -> None:
    url = f"ftp://user:{SECRET}@127.0.0.1:9/flows"  # nothing listens on port 9
    settings = Settings(store=url, cache_dir=tmp_path / "cache", store_timeout_seconds=5)
    assert load_dags(settings=settings) == {}
    assert [r for r in warnings_logged if "ftp://user:***@127.0.0.1:9/flows" in r.getMessage()]
    assert all(SECRET not in r.getMessage() for r in warnings_logged)
