"""Run Metaflow flows on Apache Airflow from published manifests, with one loader DAG file.

Public API: :func:`load_dags` (from the Airflow side, ``airflow/``), :func:`publish_flow` with
:class:`PublishRequest` (from the publish side, ``publish/``), :class:`FlowManifest` and
:class:`ManifestStore` (the shared core), and the exceptions in :mod:`metaflow_airflow.errors`.
The names are a façade over the folders, not a place where the worlds meet: importing this
package imports neither Airflow, Metaflow, pydantic nor fsspec, and each name's module is
imported when the name is first used, so that ``metaflow-airflow publish`` starts its flow
process before anything heavy is imported and ``dags_loader.py`` never imports Metaflow.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from metaflow_airflow.errors import (
    CompileError,
    ManifestError,
    MetaflowAirflowError,
    PublishError,
    StoreError,
)
from metaflow_airflow.version import __version__

if TYPE_CHECKING:
    from metaflow_airflow.airflow.loader.parse import load_dags
    from metaflow_airflow.manifest.models import FlowManifest
    from metaflow_airflow.publish.publisher import PublishRequest, PublishResult, publish_flow
    from metaflow_airflow.store.manifest_store import ManifestStore


_LAZY = {
    "FlowManifest": "metaflow_airflow.manifest.models",
    "ManifestStore": "metaflow_airflow.store.manifest_store",
    "PublishRequest": "metaflow_airflow.publish.publisher",
    "PublishResult": "metaflow_airflow.publish.publisher",
    "publish_flow": "metaflow_airflow.publish.publisher",
    "load_dags": "metaflow_airflow.airflow.loader.parse",
}

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
    if name not in _LAZY:
        raise AttributeError(name)
    value = getattr(import_module(_LAZY[name]), name)
    globals()[name] = value  # later lookups skip this function
    return value
