"""Google Cloud Storage (``gs://``) through gcsfs, and Metaflow's ``gs`` datastore.

gcsfs has no conditional overwrite, so the last writer of a pointer wins (a publish still never
moves the pointer back past a newer version it saw). Its change marker is the generation.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from metaflow_airflow.store.clouds.base import Cloud

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

    def package_location(self, url: str, env: Mapping[str, str]) -> tuple[str, dict[str, Any]]:
        if env.get(EMULATOR_HOST):
            return url, {"endpoint_url": env[EMULATOR_HOST], "token": "anon"}
        return url, {}
