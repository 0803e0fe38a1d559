"""What the loader shows in place of a DAG whose manifest is broken.

Airflow only shows a loader file's import error, which would hide every DAG of the file; and a DAG
that silently vanishes is worse. So a broken manifest with no good version to fall back on becomes
a DAG with the same id whose description names the manifest and the field, and whose one task
fails with that message when run.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from metaflow_airflow.airflow.compat import DAG, BaseOperator
from metaflow_airflow.errors import MetaflowAirflowError

# Fixed, so that the placeholder serializes the same on every parse.
PLACEHOLDER_START = datetime(2024, 1, 1, tzinfo=timezone.utc)
ERROR_TAG = "metaflow:invalid-manifest"


class InvalidManifestOperator(BaseOperator):
    """Fails with the manifest's error, so that running the DAG shows why it cannot run."""

    ui_color = "#f4c7c3"

    def __init__(self, *, error: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.error = error

    def execute(self, context: Any) -> None:
        raise MetaflowAirflowError(self.error)


def placeholder_dag(dag_id: str, url: str, error: str) -> DAG:
    """A DAG named ``dag_id`` that shows (and fails with) ``error`` about manifest ``url``."""
    message = f"{url}: {error}"
    doc = (
        f"## The manifest of this DAG is invalid\n\n`{url}`\n\n```\n{error}\n```\n\n"
        "Publish a fixed flow (`metaflow-airflow publish`), or make an earlier version current "
        f"(`metaflow-airflow rollback {dag_id}`); check a store with `metaflow-airflow validate`."
    )
    with DAG(
        dag_id=dag_id,
        description=f"Invalid manifest: {error}"[:200],
        doc_md=doc,
        schedule=None,
        start_date=PLACEHOLDER_START,
        catchup=False,
        tags=["metaflow", ERROR_TAG],
        auto_register=False,
    ) as dag:
        InvalidManifestOperator(task_id="invalid_manifest", error=message, doc_md=doc)
    return dag


def last_good_notice(url: str, error: str) -> str:
    """Put in front of a DAG's docs while it runs the last good manifest instead of ``url``."""
    return (
        f"> **Warning:** the current manifest `{url}` is invalid ({error}); this DAG runs the "
        "last version that was valid.\n\n"
    )
