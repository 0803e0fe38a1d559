"""``metaflow-airflow delete DAG_ID``."""

from __future__ import annotations

import click

from metaflow_airflow.cli.options import storage_options_option, store_option
from metaflow_airflow.store.manifest_store import ManifestStore


@click.command(name="delete")
@click.argument("dag_id")
@store_option
@storage_options_option
def delete_command(dag_id: str, store: str, storage_options: dict) -> None:
    """Stop loading DAG_ID: remove its current manifest. Airflow drops the DAG after its next
    parse; the versions stay, and `rollback DAG_ID` brings back the newest.

    \b
    Example:
      metaflow-airflow delete MyFlow --store s3://bucket/flows
    """
    manifests = ManifestStore(store, storage_options)
    manifests.delete(dag_id)
    click.echo(f"deleted {manifests.manifest_url(dag_id)}")
    click.echo(f"restore with: metaflow-airflow rollback {dag_id}", err=True)
