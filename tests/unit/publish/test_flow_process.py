"""What the flow process carries into a manifest from Metaflow's configuration: what a task
needs to find its datastore and metadata, and no credential (a manifest is readable by every
store reader, every Airflow parser and worker)."""

from __future__ import annotations

import pytest
from metaflow import metaflow_config

from metaflow_airflow.manifest.models import KubernetesCompute, LocalCompute
from metaflow_airflow.publish import flow_process
from metaflow_airflow.publish.secrets_check import is_secret_name

HEADERS = {"Authorization": "Bearer do-not-store", "x-api-key": "do-not-store-either"}


@pytest.fixture
def service_with_headers(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(metaflow_config, "SERVICE_URL", "https://metadata.example.com")
    monkeypatch.setattr(metaflow_config, "SERVICE_INTERNAL_URL", None)
    monkeypatch.setattr(metaflow_config, "SERVICE_HEADERS", HEADERS)


@pytest.mark.parametrize("datastore", ["local", "s3", "azure", "gs"])
def test_metadata_service_headers_are_never_stored(datastore: str, service_with_headers) -> None:
    env = flow_process._runtime_config_env(datastore, "/root/of/the/datastore", "service")
    assert env["METAFLOW_DEFAULT_METADATA"] == "service"
    # The service's location is the deployment's too (docs/operations.md): not the publisher's.
    assert "METAFLOW_SERVICE_URL" not in env
    assert "METAFLOW_SERVICE_HEADERS" not in env
    assert not [value for value in env.values() if "do-not-store" in value]
    assert not [name for name in env if is_secret_name(name)]


@pytest.mark.parametrize("compute", [LocalCompute(), KubernetesCompute()])
def test_publish_says_where_the_headers_go_instead(compute, service_with_headers) -> None:
    (warning,) = [w for w in flow_process._warnings(compute, "service") if "HEADERS" in w]
    assert "not stored in the manifest" in warning and "Kubernetes secret" in warning


def test_no_warning_without_headers(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(metaflow_config, "SERVICE_HEADERS", {})
    assert flow_process._warnings(LocalCompute(), "service") == ()


def test_pods_are_told_where_the_service_url_comes_from(monkeypatch: pytest.MonkeyPatch) -> None:
    """A pod does not see the worker's environment: its service URL comes from a secret."""
    monkeypatch.setattr(metaflow_config, "SERVICE_HEADERS", {})
    (warning,) = flow_process._warnings(KubernetesCompute(), "service")
    assert "METAFLOW_SERVICE_URL" in warning and "Kubernetes secret" in warning
