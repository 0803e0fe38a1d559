"""Azure Blob Storage (``az://``, ``abfs://``) through adlfs, and Metaflow's ``azure``
datastore. Pointer moves are conditional on the blob's ETag."""

from __future__ import annotations

import urllib.parse
from collections.abc import Mapping
from typing import Any, ClassVar

from metaflow_airflow.store.clouds.base import Cloud, WriteConflict, causes, named, one_line

ENDPOINT = "METAFLOW_AZURE_STORAGE_BLOB_SERVICE_ENDPOINT"


class AzureCloud(Cloud):
    name: ClassVar[str] = "azure"
    protocols: ClassVar[frozenset[str]] = frozenset({"az", "abfs", "abfss"})
    # adlfs serves az:// and abfs:// alike, but the Azure provider registers only abfs.
    connection_scheme: ClassVar[str | None] = "abfs"
    airflow_provider: ClassVar[str | None] = "apache-airflow-providers-microsoft-azure"
    marker_keys: ClassVar[tuple[str, ...]] = ("etag",)
    sysroot_variable: ClassVar[str | None] = "METAFLOW_DATASTORE_SYSROOT_AZURE"
    task_settings: ClassVar[Mapping[str, str]] = {
        ENDPOINT: "AZURE_STORAGE_BLOB_SERVICE_ENDPOINT",
        "METAFLOW_DEFAULT_AZURE_CLIENT_PROVIDER": "DEFAULT_AZURE_CLIENT_PROVIDER",
    }

    has_buckets: ClassVar[bool] = True
    bucket_word: ClassVar[str] = "container"
    provider_credential_errors: ClassVar[tuple[str, ...]] = (
        "ClientAuthenticationError",
        "CredentialUnavailableError",
    )

    def explain(self, error: BaseException, *, datastore: bool = False) -> str:
        for cause in causes(error):
            if named(cause, "ClientAuthenticationError", "CredentialUnavailableError"):
                return (
                    "Azure refused the credentials or found none; give account_name with "
                    "account_key, sas_token or connection_string in --storage-options, or "
                    "sign in with `az login`"
                )
            if named(cause, "ServiceRequestError"):
                return (
                    f"cannot connect to the storage account ({one_line(cause)}); check its "
                    "endpoint (account_name, account_host or the connection string's "
                    "BlobEndpoint in --storage-options) and the network"
                )
            if getattr(cause, "error_code", None) == "ContainerNotFound":
                return "the container does not exist; create it, or correct the store URL"
        return super().explain(error, datastore=datastore)

    def replace_if_unchanged(self, fs: Any, path: str, data: bytes, tag: str) -> None:
        from azure.core import MatchConditions

        try:
            fs.pipe_file(path, data, etag=tag, match_condition=MatchConditions.IfNotModified)
        except Exception as exc:  # azure-core's HttpResponseError, or adlfs's wrapping of it
            if any(getattr(e, "status_code", None) in {409, 412} for e in (exc, exc.__cause__)):
                raise WriteConflict() from exc
            raise

    def package_location(self, url: str, env: Mapping[str, str]) -> tuple[str, dict[str, Any]]:
        """Metaflow's Azure URLs are ``<container>/<blob>``, without a scheme."""
        endpoint = env.get(ENDPOINT, "")
        return f"az://{url}", _account(endpoint) if endpoint else {}


def _account(endpoint: str) -> dict[str, str]:
    """adlfs options for a blob service endpoint: ``https://<account>.blob.core.windows.net/``,
    or path-style ``https://<host>/<account>`` (azurite)."""
    parts = urllib.parse.urlsplit(endpoint)
    path = parts.path.strip("/")
    account = path.split("/")[0] if path else parts.netloc.split(".")[0]
    return {"account_name": account, "account_host": f"{parts.netloc}/{path}".rstrip("/")}
