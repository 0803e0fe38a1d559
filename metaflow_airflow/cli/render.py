"""``metaflow-airflow render DAG_ID``."""

from __future__ import annotations

import click

from metaflow_airflow.cli.options import storage_options_option, store_option
from metaflow_airflow.store.manifest_store import ManifestStore


@click.command(name="render")
@click.argument("dag_id")
@store_option
@storage_options_option
def render_command(dag_id: str, store: str, storage_options: dict) -> None:
    """Build DAG_ID from its manifest as Airflow's loader does and print its task tree:
    each task's operator, the mapped foreach groups, and what each task waits for.
    Needs Airflow installed (run it where Airflow runs, or in a virtualenv with it).

    \b
    Examples:
      metaflow-airflow render ForeachFlow --store s3://bucket/flows
      AIRFLOW_HOME=/tmp/af metaflow-airflow render nightly.prod.TrainFlow
    """
    from metaflow_airflow.airflow.dag.factory import (
        build_dag,  # imports Airflow: only this command needs it
    )
    from metaflow_airflow.airflow.dag.tree import dag_tree

    manifests = ManifestStore(store, storage_options)
    dag = build_dag(manifests.read(dag_id), manifest_url=manifests.manifest_url(dag_id))
    for line in dag_tree(dag):
        click.echo(line)
