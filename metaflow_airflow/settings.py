"""Settings read from the environment (prefix ``METAFLOW_AIRFLOW_``), once per process.

A plain pydantic model filled from ``os.environ`` rather than pydantic-settings: every Airflow
parse is a new process that reads these, and importing pydantic-settings costs ~130 ms of it.
"""

from __future__ import annotations

import json
import os
import typing
from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

ENV_PREFIX = "METAFLOW_AIRFLOW_"


def default_cache_dir() -> Path:
    """Beside Airflow's own state (``$AIRFLOW_HOME``, else Airflow's default ``~/airflow``):
    a folder that survives between parses, which are separate processes."""
    home = os.environ.get("AIRFLOW_HOME") or os.path.join("~", "airflow")
    return Path(home).expanduser() / "metaflow-airflow-cache"


class Settings(BaseModel):
    """Where manifests live and how the loader behaves (see docs/operations.md).

    ``METAFLOW_AIRFLOW_STORE`` is the store URL (``file:///...``, ``s3://bucket/prefix``);
    ``METAFLOW_AIRFLOW_STORAGE_OPTIONS`` a JSON object handed to fsspec;
    ``METAFLOW_AIRFLOW_CONN_ID`` an Airflow connection whose credentials open the store;
    ``METAFLOW_AIRFLOW_STRICT=true`` makes the loader raise instead of logging (for CI);
    ``METAFLOW_AIRFLOW_REQUIRE_SIGNED=true`` builds only manifests signed with the signing key;
    ``METAFLOW_AIRFLOW_CACHE_DIR`` where the last-known-good manifests are kept;
    ``METAFLOW_AIRFLOW_STORE_TIMEOUT_SECONDS`` how long a parse waits for the store;
    ``METAFLOW_AIRFLOW_CACHE_FRESH_SECONDS`` how old a cached manifest may be for a task's parse
    to use it without asking the store;
    ``METAFLOW_AIRFLOW_LOCAL_PYTHON`` the interpreter that runs steps with local compute
    (default: the worker's own).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    store: str | None = None
    storage_options: dict[str, Any] = {}
    conn_id: str | None = None
    strict: bool = False
    require_signed: bool = False
    cache_dir: Path = Field(default_factory=default_cache_dir)
    store_timeout_seconds: float = Field(default=10.0, gt=0)
    cache_fresh_seconds: float = Field(default=60.0, ge=0)
    local_python: str | None = None

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Each field from ``METAFLOW_AIRFLOW_<FIELD>`` where set; objects are JSON text."""
        environ = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for name, field in cls.model_fields.items():
            text = environ.get(f"{ENV_PREFIX}{name.upper()}")
            if text is not None:
                values[name] = json.loads(text or "{}") if _is_object(field.annotation) else text
        return cls.model_validate(values)


def _is_object(annotation: Any) -> bool:
    return annotation is dict or typing.get_origin(annotation) is dict


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings; tests build ``Settings(...)`` directly instead."""
    return Settings.from_environment()
