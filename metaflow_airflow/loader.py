"""``load_dags()``: what the one ``dags_loader.py`` file in Airflow's dags folder calls.

It never raises by default: a broken manifest or an unreachable store is logged, and the other
DAGs still load (Airflow would otherwise drop every DAG of the file). ``strict`` raises, for CI.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, MutableMapping
from typing import Any

from .errors import MetaflowAirflowError
from .settings import Settings, get_settings
from .store import ManifestStore

log = logging.getLogger(__name__)


def load_dags(
    target: MutableMapping[str, Any] | None = None,
    *,
    store: str | None = None,
    storage_options: Mapping[str, Any] | None = None,
    settings: Settings | None = None,
) -> dict[str, Any]:
    """Build a DAG for every manifest in the store and put them into ``target`` (the loader
    file's ``globals()``). Returns the DAGs by dag_id."""
    from .factory import build_dag

    settings = settings or get_settings()
    dags: dict[str, Any] = {}
    try:
        manifests, errors = ManifestStore(
            store or settings.store or "",
            settings.storage_options if storage_options is None else storage_options,
        ).read_all()
    except MetaflowAirflowError as exc:
        _report(settings, exc, "cannot load Metaflow DAGs")
        return dags
    for error in errors.values():
        _report(settings, error, "skipping manifest")
    for dag_id, manifest in manifests.items():
        try:
            dags[dag_id] = build_dag(manifest)
        except Exception as exc:  # one DAG's failure must not hide the others
            _report(settings, exc, f"cannot build DAG {dag_id}")
    if target is not None:
        target.update(dags)
    return dags


def _report(settings: Settings, error: Exception, what: str) -> None:
    if settings.strict:
        raise error
    log.error("metaflow-airflow: %s: %s", what, error)
