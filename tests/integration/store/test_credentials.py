"""Credentials: publish refuses plaintext secrets in @environment; the store can be reached
through an Airflow connection (a real moto server); publish signs manifests when a key is set."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path

import fsspec
import pytest
from helpers import METAFLOW_SYSROOT, flow_path
from servers import AWS_ENV

from metaflow_airflow import CompileError, ManifestStore, StoreError
from metaflow_airflow.airflow import connections
from metaflow_airflow.airflow.connections import storage_options_from_connection
from metaflow_airflow.errors import SignatureError
from metaflow_airflow.manifest.signing import KEY_ENV, KEY_FILE_ENV, verify

pytestmark = pytest.mark.timeout(180)

KEY = "0123456789abcdef" * 4


def _uploaded_packages(flow_name: str) -> list[Path]:
    return list((METAFLOW_SYSROOT / ".metaflow" / flow_name).glob("data/*/*"))


def test_plaintext_secrets_are_refused_before_anything_is_uploaded(publish, store_url) -> None:
    with pytest.raises(CompileError) as refused:
        publish("secret_env_flow.py")
    message = str(refused.value)
    assert "step 'start': API_TOKEN; step 'end': AWS_SECRET_ACCESS_KEY" in message
    assert "TOKENIZERS_PARALLELISM" not in message and "DB_PASSWORD" not in message
    assert "tok-123" not in message
    assert "@secrets" in message and "--allow-plaintext-env" in message
    assert _uploaded_packages("SecretEnvFlow") == []
    assert ManifestStore(store_url).list() == []


def test_allow_plaintext_env_publishes_them(publish, store_url) -> None:
    publish("secret_env_flow.py", allow_plaintext_env=True)
    steps = ManifestStore(store_url).read("SecretEnvFlow").steps_by_name
    assert steps["start"].env["API_TOKEN"] == "tok-123"
    assert steps["end"].env["AWS_SECRET_ACCESS_KEY"] == "abc"


def _cli(*args: str) -> subprocess.CompletedProcess:
    exe = Path(sys.executable).parent / "metaflow-airflow"
    return subprocess.run([str(exe), *args], capture_output=True, text=True, check=False)


def test_cli_refuses_and_the_flag_overrides(store_url) -> None:
    flow = str(flow_path("secret_env_flow.py"))
    refused = _cli("publish", flow, "--store", store_url, "--compute", "local")
    assert refused.returncode == 1
    assert refused.stderr.strip().splitlines()[-1].startswith("error: plaintext secrets in")
    assert "Traceback" not in refused.stderr

    allowed = _cli(
        "publish", flow, "--store", store_url, "--compute", "local", "--allow-plaintext-env"
    )
    assert allowed.returncode == 0, allowed.stderr
    assert "dag_id: SecretEnvFlow" in allowed.stdout


# --- an Airflow connection for the store -----------------------------------------------------


def test_storage_options_from_an_airflow_connection(
    s3_bucket_info, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The connection alone (no AWS variables in the environment) reaches the moto server:
    its endpoint and its keys, through the Amazon provider's ObjectStoragePath file system."""
    connection = {
        "conn_type": "aws",
        "login": "conn-key-id",
        "password": "conn-secret",
        "extra": {"endpoint_url": s3_bucket_info.endpoint, "region_name": "us-east-1"},
    }
    s3_bucket_info.fs().pipe_file(f"{s3_bucket_info.name}/flows/manifests/a.json", b"{}")
    monkeypatch.setenv("AIRFLOW_CONN_METAFLOW_STORE", json.dumps(connection))
    for name in (*AWS_ENV, "METAFLOW_S3_ENDPOINT_URL"):
        monkeypatch.delenv(name, raising=False)

    options = storage_options_from_connection("metaflow_store", "s3")

    assert options["endpoint_url"] == s3_bucket_info.endpoint
    credentials = asyncio.run(options["session"].get_credentials())
    assert (credentials.access_key, credentials.secret_key) == ("conn-key-id", "conn-secret")
    fs, root = fsspec.core.url_to_fs(f"{s3_bucket_info.url}/flows", **options)
    assert fs.ls(f"{root}/manifests", detail=False) == [f"{root}/manifests/a.json"]


def test_a_protocol_without_a_provider_is_a_store_error() -> None:
    with pytest.raises(StoreError) as refused:
        storage_options_from_connection("wasb_default", "az")
    assert str(refused.value) == (
        "Airflow connection 'wasb_default' cannot open az:// stores: no installed provider "
        "registers abfs:// (install apache-airflow-providers-microsoft-azure)"
    )


def test_any_other_refusal_keeps_its_own_message(monkeypatch: pytest.MonkeyPatch) -> None:
    """Not every ValueError means a missing provider (an incompatible universal-pathlib made
    ObjectStoragePath refuse s3:// with the Amazon provider installed): say what Airflow said."""

    def refuse(url: str, conn_id: str) -> None:
        raise ValueError("protocol 's3' is not supported by this path class")

    monkeypatch.setattr(connections, "object_storage_path", refuse)
    with pytest.raises(StoreError) as refused:
        storage_options_from_connection("aws_default", "s3")
    assert str(refused.value) == (
        "Airflow connection 'aws_default' cannot open s3:// stores: protocol 's3' is not "
        "supported by this path class"
    )


# --- signed publish ----------------------------------------------------------------------------


def test_publish_signs_the_manifest_when_a_key_is_set(
    publish, s3_bucket_info, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    key_file = tmp_path / "signing.key"
    key_file.write_text(KEY + "\n")
    monkeypatch.delenv(KEY_ENV, raising=False)
    monkeypatch.setenv(KEY_FILE_ENV, str(key_file))
    store_url = f"{s3_bucket_info.url}/flows"
    options = s3_bucket_info.storage_options

    result = publish("branch_flow.py", store=store_url, storage_options=options)

    assert result.signature_url == f"{store_url}/manifests/BranchFlow.json.sig"
    fs = s3_bucket_info.fs()
    stored = fs.cat_file(result.manifest_url)
    signature = fs.cat_file(result.signature_url)
    activated = verify(stored, signature, KEY.encode(), url=result.manifest_url)
    (version,) = ManifestStore(store_url, options).history("BranchFlow")
    assert activated >= version.name.split("-")[0]  # signed as made current by this publish
    tampered = stored.replace(b'"BranchFlow"', b'"BranchFlaw"', 1)
    with pytest.raises(SignatureError, match="BranchFlow.json: signature does not match"):
        verify(tampered, signature, KEY.encode(), url=result.manifest_url)


def test_publish_without_a_key_writes_no_signature(publish, store_url, monkeypatch) -> None:
    monkeypatch.delenv(KEY_ENV, raising=False)
    monkeypatch.delenv(KEY_FILE_ENV, raising=False)
    result = publish("branch_flow.py")
    assert result.signature_url is None
    assert not Path(result.manifest_url.removeprefix("file://") + ".sig").exists()


def test_a_short_key_fails_publish_before_upload(publish, store_url, monkeypatch) -> None:
    from metaflow_airflow import PublishError

    monkeypatch.setenv(KEY_ENV, "too-short")
    monkeypatch.delenv(KEY_FILE_ENV, raising=False)
    with pytest.raises(PublishError, match="has 9 bytes; use at least 32"):
        publish("secret_env_flow.py", allow_plaintext_env=True)
    assert ManifestStore(store_url).list() == []


def test_store_credentials_stay_out_of_the_flow_process(
    publish, s3_bucket_info, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The flow process compiles and uploads; the caller writes the manifest, so the store's
    options (which may hold keys) never appear on a command line that `ps` shows."""
    from metaflow_airflow.publish import publisher

    secret = "store-secret-" + "x" * 20
    options = {**s3_bucket_info.storage_options, "key": AWS_ENV["AWS_ACCESS_KEY_ID"],
               "secret": secret}
    launched: list[list[str]] = []
    popen = subprocess.Popen

    def recording_popen(argv, **kwargs):
        launched.append(list(argv))
        return popen(argv, **kwargs)

    monkeypatch.setattr(publisher.subprocess, "Popen", recording_popen)
    store_url = f"{s3_bucket_info.url}/flows"
    result = publish("branch_flow.py", store=store_url, storage_options=options)

    assert len(launched) == 1 and "metaflow_airflow.publish.flow_process" in launched[0]
    assert not any(secret in arg or store_url in arg for arg in launched[0])
    assert ManifestStore(store_url, s3_bucket_info.storage_options).read("BranchFlow").dag_id \
        == result.dag_id
