"""Each cloud names a failure of its client in plain words with the fix: here the failures that
take a client minutes of retries to reach (an unreachable endpoint on GCS and Azure), raised by
the clients' own libraries against a closed port on 127.0.0.1 with retries off; the commands'
one-line errors against real servers are in tests/integration/cli/test_store_errors.py."""

from __future__ import annotations

import asyncio
import socket

import pytest

from metaflow_airflow.store.clouds.azure import AzureCloud
from metaflow_airflow.store.clouds.base import Cloud
from metaflow_airflow.store.clouds.gcs import GcsCloud
from metaflow_airflow.store.clouds.s3 import NO_CREDENTIALS, S3Cloud


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def raised(call) -> BaseException:
    with pytest.raises(Exception) as info:
        call()
    return info.value


def test_gcs_unreachable_endpoint():
    import aiohttp

    port = closed_port()

    async def get() -> None:
        async with aiohttp.ClientSession() as session:
            await session.get(f"http://127.0.0.1:{port}/storage/v1/b/flows/o")

    error = raised(lambda: asyncio.run(get()))
    wrapped = OSError("request failed")
    wrapped.__cause__ = error  # as a client's own error, raised from aiohttp's
    assert GcsCloud().explain(wrapped) == (
        f"cannot connect to 127.0.0.1:{port}; check the network, or the endpoint "
        """(--storage-options '{"endpoint_url": ...}' or STORAGE_EMULATOR_HOST)"""
    )


def test_gcs_without_credentials():
    from google.auth.exceptions import DefaultCredentialsError

    error = DefaultCredentialsError("Your default credentials were not found.")
    assert GcsCloud().explain(error) == (
        "no usable Google credentials (Your default credentials were not found.); run `gcloud "
        "auth application-default login` or set GOOGLE_APPLICATION_CREDENTIALS, or give a token "
        "in --storage-options"
    )


def test_azure_unreachable_endpoint():
    from azure.storage.blob import BlobServiceClient

    port = closed_port()
    client = BlobServiceClient(
        f"http://127.0.0.1:{port}/devstoreaccount1", credential=None, retry_total=0
    )
    error = raised(lambda: client.get_container_client("flows").exists())
    explained = AzureCloud().explain(error)
    assert explained.startswith("cannot connect to the storage account (")
    assert explained.endswith(
        "); check its endpoint (account_name, account_host or the connection string's "
        "BlobEndpoint in --storage-options) and the network"
    )


def test_azure_refused_credentials():
    from azure.core.exceptions import ClientAuthenticationError

    assert AzureCloud().explain(ClientAuthenticationError("Server failed to authenticate")) == (
        "Azure refused the credentials or found none; give account_name with account_key, "
        "sas_token or connection_string in --storage-options, or sign in with `az login`"
    )


def test_s3_missing_credentials_wrapped_by_another_error():
    from botocore.exceptions import NoCredentialsError

    outer = PermissionError("denied")
    outer.__context__ = NoCredentialsError()
    assert S3Cloud().explain(outer) == NO_CREDENTIALS


def test_an_unknown_failure_keeps_its_own_words_on_one_line():
    assert Cloud().explain(ValueError("first line\n  second line")) == "first line second line"
    assert Cloud().explain(ValueError()) == "ValueError"


def test_a_datastore_probe_leaves_provider_credentials_to_metaflow() -> None:
    """Metaflow reaches Azure and GCS datastores through a client provider of its own: our
    probe's refused credentials do not fail a publish; S3's (the same boto3 chain) do."""
    from azure.core.exceptions import ClientAuthenticationError, ServiceRequestError
    from botocore.exceptions import NoCredentialsError
    from google.auth.exceptions import DefaultCredentialsError

    wrapped = RuntimeError("adlfs")
    wrapped.__cause__ = ClientAuthenticationError("no token")
    assert not AzureCloud().probe_conclusive(wrapped)
    assert AzureCloud().probe_conclusive(ServiceRequestError("cannot connect"))
    assert not GcsCloud().probe_conclusive(DefaultCredentialsError("none"))
    assert S3Cloud().probe_conclusive(NoCredentialsError())
