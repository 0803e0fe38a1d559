"""``metaflow-airflow history DAG_ID``."""

from __future__ import annotations

import click

from metaflow_airflow.cli.options import storage_options_option, store_option
from metaflow_airflow.store.manifest_store import ManifestStore


@click.command(name="history")
@click.argument("dag_id")
@store_option
@storage_options_option
def history_command(dag_id: str, store: str, storage_options: dict) -> None:
    """List the published versions of DAG_ID, oldest first; '*' marks the current one.

    \b
    Example:
      metaflow-airflow history MyFlow --store s3://bucket/flows
    """
    versions = ManifestStore(store, storage_options).history(dag_id)
    for version in versions:
        mark = "*" if version.current else " "
        click.echo(f"{mark} {version.name}\t{version.created_at.isoformat()}")
    if not versions:
        click.echo(f"{dag_id} was published before versioning: no stored versions", err=True)
    elif not any(v.current for v in versions):
        restore = f"`metaflow-airflow rollback {dag_id}`"
        click.echo(f"{dag_id} is deleted; {restore} restores it", err=True)
