"""A run stays on its version: every task of a DAG run executes the manifest (and so the code
package) its ``start`` task ran, whatever was published while the run was in progress.

A worker builds a task's DAG from the manifest that is current when the task starts, and
Airflow moves a running run onto the newest DAG when the DAG's bundle is not versioned (the dags
folder, on Airflow 2 and 3 alike): without this a run that outlives a publish mixes versions
(its first steps v1's code package, its last ones v2's). The ``start`` task records the SHA-256
of the manifest it ran as an XCom; each later task whose own manifest differs reads that exact
version back from the store's ``versions/`` (accepted as the loader accepts it, signature
included) and runs it. A step the run's version does not have (a later publish added or renamed
it, and Airflow scheduled it in the running run) fails with a message saying so; on Airflow 3 the
versioned bundle (``loader/bundle.py``) keeps the run on its DAG, so that this does not happen.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from metaflow_airflow.airflow.compat import AirflowFailException
from metaflow_airflow.airflow.compute.context import BoundStep
from metaflow_airflow.airflow.loader.fetcher import Unavailable
from metaflow_airflow.airflow.loader.versions import read_version, store_of
from metaflow_airflow.errors import StoreError
from metaflow_airflow.manifest.models import FlowManifest
from metaflow_airflow.runtime.invocation import START_STEP
from metaflow_airflow.settings import get_settings

log = logging.getLogger(__name__)

# The XCom of the start task: the SHA-256 of the manifest's stored bytes the run started with.
MANIFEST_XCOM_KEY = "metaflow_manifest_sha256"


@dataclass(frozen=True)
class PinnedManifest:
    """The manifest of the run's version, as the task's ``ManifestSource``."""

    manifest: FlowManifest


def stay_on_run_version(operator: BoundStep, context: Any) -> None:
    """Before a step runs: ``start`` records its manifest; any other step switches ``operator``
    to the manifest ``start`` recorded, if that is not the one it was built from."""
    ti = context["ti"]
    current = operator.manifest
    if operator.step_name == START_STEP:
        ti.xcom_push(key=MANIFEST_XCOM_KEY, value=current.content_hash)
        return
    pinned = ti.xcom_pull(task_ids=START_STEP, key=MANIFEST_XCOM_KEY)
    if not pinned or pinned == current.content_hash:
        return  # the same version (or a run whose start predates this record)
    try:
        manifest = read_version(store_of(current.dag_id, get_settings()), current.dag_id, pinned)
    except (Unavailable, StoreError) as exc:
        # Retried as any failure: the store may be back by the next try.
        raise RuntimeError(
            f"cannot read the manifest version this run started with ({pinned[:12]}): {exc}"
        ) from exc
    if operator.step_name not in manifest.steps_by_name:
        raise AirflowFailException(
            f"step {operator.step_name} is not in the manifest version this run started with "
            f"({pinned[:12]}): a later publish added or renamed it (on Airflow 3, the versioned "
            f"bundle ManifestStoreBundle keeps a run on its DAG: docs/operations.md)"
        )
    log.info(
        "metaflow-airflow: this run started on manifest version %s; running that version "
        "(the current one is %s)",
        pinned[:12],
        current.content_hash[:12],
    )
    operator.bind(PinnedManifest(manifest), operator.step_name)
