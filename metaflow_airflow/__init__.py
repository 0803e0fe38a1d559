"""Run Metaflow flows on Apache Airflow from published manifests, with one loader DAG file.

Public API: :func:`load_dags` (Airflow side), :func:`publish_flow` with
:class:`PublishRequest` (publish side), :class:`FlowManifest`, :class:`ManifestStore`, and the
exceptions in :mod:`metaflow_airflow.errors`. Importing this package imports neither Airflow
nor Metaflow; each side's heavy imports happen when its functions are first used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .errors import (
    CompileError,
    ManifestError,
    MetaflowAirflowError,
    PublishError,
    StoreError,
)
from .manifest import FlowManifest
from .publisher import PublishRequest, PublishResult, publish_flow
from .store import ManifestStore

if TYPE_CHECKING:
    from .loader import load_dags

__version__ = "0.1.0"

__all__ = [
    "CompileError",
    "FlowManifest",
    "ManifestError",
    "ManifestStore",
    "MetaflowAirflowError",
    "PublishError",
    "PublishRequest",
    "PublishResult",
    "StoreError",
    "__version__",
    "load_dags",
    "publish_flow",
]


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})


def __getattr__(name: str) -> Any:
    if name == "load_dags":  # keeps the publish side free of the Airflow import
        from .loader import load_dags

        return load_dags
    raise AttributeError(name)
