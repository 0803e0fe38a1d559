"""Settings read from the environment (prefix ``METAFLOW_AIRFLOW_``), once per process."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Where manifests live and how the loader behaves.

    ``METAFLOW_AIRFLOW_STORE`` is the store URL (``file:///...``, ``s3://bucket/prefix``);
    ``METAFLOW_AIRFLOW_STORAGE_OPTIONS`` a JSON object handed to fsspec;
    ``METAFLOW_AIRFLOW_STRICT=true`` makes the loader raise instead of logging (for CI);
    ``METAFLOW_AIRFLOW_LOCAL_PYTHON`` the interpreter that runs steps with local compute
    (default: the worker's own).
    """

    model_config = SettingsConfigDict(env_prefix="METAFLOW_AIRFLOW_", frozen=True, extra="ignore")

    store: str | None = None
    storage_options: dict[str, Any] = {}
    strict: bool = False
    local_python: str | None = None


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings; tests build ``Settings(...)`` directly instead."""
    return Settings()
