"""Every setting of metaflow-airflow, read from the environment (prefix ``METAFLOW_AIRFLOW_``)
here and nowhere else.

A plain pydantic model filled from ``os.environ`` rather than pydantic-settings: every Airflow
parse is a new process that reads these, and importing pydantic-settings is a noticeable part
of a parse (docs/performance.md). Each field's description is what ``airflow config list``
shows for it (the provider's ``[metaflow_airflow]`` section is derived from this class).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

ENV_PREFIX = "METAFLOW_AIRFLOW_"


def env_var(field: str) -> str:
    """The environment variable of a setting: ``METAFLOW_AIRFLOW_<FIELD>``."""
    return f"{ENV_PREFIX}{field.upper()}"


def default_cache_dir() -> Path:
    """Beside Airflow's own state (``$AIRFLOW_HOME``, else Airflow's default ``~/airflow``):
    a folder that survives between parses, which are separate processes."""
    home = os.environ.get("AIRFLOW_HOME") or os.path.join("~", "airflow")
    return Path(home).expanduser() / "metaflow-airflow-cache"


class Settings(BaseModel):
    """Where manifests live and how the loader behaves (see docs/operations.md)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    store: str | None = Field(
        default=None, description="The store URL (file:///..., s3://bucket/prefix, az://, gs://)."
    )
    storage_options: dict[str, Any] = Field(
        default={}, description="A JSON object handed to fsspec when the store is opened."
    )
    conn_id: str | None = Field(
        default=None, description="An Airflow connection whose credentials open the store."
    )
    strict: bool = Field(
        default=False, description="Make the loader raise instead of logging (for CI)."
    )
    require_signed: bool = Field(
        default=False, description="Build only manifests signed with the signing key."
    )
    signing_key: SecretStr | None = Field(
        default=None, description="The manifest signing key itself (at least 32 bytes)."
    )
    signing_key_file: Path | None = Field(
        default=None, description="A file holding the manifest signing key."
    )
    cache_dir: Path = Field(
        default_factory=default_cache_dir,
        description="Where the last-known-good manifests are kept.",
    )
    store_timeout_seconds: float = Field(
        default=10.0, gt=0, description="How long a parse waits for the store."
    )
    cache_fresh_seconds: float = Field(
        default=60.0,
        ge=0,
        description="How old a cached manifest may be for a task's parse to use it without "
        "asking the store.",
    )
    local_python: str | None = Field(
        default=None,
        description="The interpreter that runs steps with local compute (default: the "
        "worker's own).",
    )
    unknown_run_conf: Literal["refuse", "warn"] = Field(
        default="refuse",
        description="What a run's conf key that is no Parameter of the flow does: 'refuse' "
        "fails the run's start task with a message naming it, 'warn' logs it and runs.",
    )
    dag_id_prefix: str = Field(
        default="",
        pattern=r"^[A-Za-z0-9_.-]*$",
        description="Put before every published DAG id in Airflow (e.g. 'mf.'): a DAG file "
        "that defines a published flow's DAG id no longer takes it over (Airflow keeps one "
        "DAG per id, from whichever file it parsed last).",
    )
    ui_url: str | None = Field(
        default=None,
        description="Metaflow UI base URL: every Metaflow task gets a 'Metaflow UI' link to "
        "its pathspec. Also read from Airflow's configuration ([metaflow_airflow] ui_url).",
    )

    api_url: str | None = Field(
        default=None,
        description="Base URL of the Airflow API server that `metaflow-airflow trigger`, `runs` "
        "and the Deployer call (Airflow 3's api-server or Airflow 2's webserver), e.g. "
        "http://localhost:8080.",
    )
    api_username: str | None = Field(
        default=None,
        description="User name for the Airflow API (a JWT from /auth/token on Airflow 3, basic "
        "auth on Airflow 2).",
    )
    api_password: SecretStr | None = Field(
        default=None, description="Password of that Airflow API user."
    )
    api_token: SecretStr | None = Field(
        default=None,
        description="A ready bearer token for the Airflow API, instead of a user name and "
        "password.",
    )
    dag_wait_seconds: float = Field(
        default=120.0,
        ge=0,
        description="How long `trigger` and the Deployer wait for Airflow to parse a DAG just "
        "published before giving up.",
    )

    @field_validator("storage_options", mode="before")
    @classmethod
    def _json_object(cls, value: Any) -> Any:
        """From the environment, objects are JSON text ("" = empty)."""
        if isinstance(value, str):
            try:
                return json.loads(value or "{}")
            except ValueError as exc:
                raise ValueError(f"not JSON: {exc}") from exc
        return value

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Each field from ``METAFLOW_AIRFLOW_<FIELD>`` where set."""
        environ = os.environ if environ is None else environ
        values = {
            name: environ[env_var(name)] for name in cls.model_fields if env_var(name) in environ
        }
        return cls.model_validate(values)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings of a parse or a task; tests build ``Settings(...)`` directly,
    and the commands read ``Settings.from_environment()`` when they run."""
    return Settings.from_environment()
