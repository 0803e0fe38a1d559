"""Google Cloud Storage (``gs://``) through gcsfs, and Metaflow's ``gs`` datastore.

gcsfs has no conditional overwrite, so the last writer of a pointer wins (a publish still never
moves the pointer back past a newer version it saw). Its change marker is the generation.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from metaflow_airflow.store.clouds.base import Cloud, causes, named, one_line

# What Google's clients read to reach an emulator, as S3 has its endpoint URL.
EMULATOR_HOST = "STORAGE_EMULATOR_HOST"


class GcsCloud(Cloud):
    name: ClassVar[str] = "gs"
    protocols: ClassVar[frozenset[str]] = frozenset({"gs", "gcs"})
    connection_scheme: ClassVar[str | None] = "gs"
    airflow_provider: ClassVar[str | None] = "apache-airflow-providers-google"
    marker_keys: ClassVar[tuple[str, ...]] = ("etag", "generation", "md5Hash")
    sysroot_variable: ClassVar[str | None] = "METAFLOW_DATASTORE_SYSROOT_GS"
    task_settings: ClassVar[Mapping[str, str]] = {
        "METAFLOW_DEFAULT_GCP_CLIENT_PROVIDER": "DEFAULT_GCP_CLIENT_PROVIDER"
    }
    task_passthrough: ClassVar[tuple[str, ...]] = (EMULATOR_HOST,)
    has_buckets: ClassVar[bool] = True
    # gcsfs logs each request it gives up on, traceback included.
    noisy_loggers: ClassVar[tuple[str, ...]] = ("gcsfs",)
    provider_credential_errors: ClassVar[tuple[str, ...]] = (
        "DefaultCredentialsError",
        "RefreshError",
    )

    def explain(self, error: BaseException, *, datastore: bool = False) -> str:
        for cause in causes(error):
            if named(cause, "DefaultCredentialsError", "RefreshError"):
                return (
                    f"no usable Google credentials ({one_line(cause)}); run `gcloud auth "
                    "application-default login` or set GOOGLE_APPLICATION_CREDENTIALS, or give "
                    "a token in --storage-options"
                )
            if named(cause, "ClientConnectorError", "ServerTimeoutError"):
                return (
                    f"cannot connect to {getattr(cause, 'host', 'GCS')}:"
                    f"{getattr(cause, 'port', '')}; check the network, or the endpoint "
                    "(--storage-options '{\"endpoint_url\": ...}' or STORAGE_EMULATOR_HOST)"
                )
            # gcsfs raises a plain OSError for the statuses 401 and 403.
            if getattr(cause, "code", None) in {401, 403} or str(cause).startswith(
                ("Forbidden", "Unauthorized")
            ):
                return (
                    f"access denied ({one_line(cause)}); use credentials allowed to list, read "
                    "and write the bucket (roles/storage.objectAdmin)"
                )
        return super().explain(error, datastore=datastore)

    def package_location(self, url: str, env: Mapping[str, str]) -> tuple[str, dict[str, Any]]:
        if env.get(EMULATOR_HOST):
            return url, {"endpoint_url": env[EMULATOR_HOST], "token": "anon"}
        return url, {}
