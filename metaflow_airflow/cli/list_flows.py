"""``metaflow-airflow list``."""

from __future__ import annotations

import click

from ..store import ManifestStore
from .options import storage_options_option, store_option


@click.command(name="list")
@store_option
@storage_options_option
def list_command(store: str, storage_options: dict) -> None:
    """List the published flows: DAG id, flow, compute, publisher and time.

    \b
    Example:
      metaflow-airflow list --store s3://bucket/flows
    """
    manifests, errors = ManifestStore(store, storage_options).read_all()
    for dag_id, manifest in manifests.items():
        click.echo(
            f"{dag_id}\t{manifest.flow_name}\t{manifest.compute.kind}\t"
            f"{manifest.published_by}\t{manifest.published_at.isoformat()}"
        )
    for dag_id, error in errors.items():
        click.echo(f"{dag_id}\tINVALID\t{error.detail}", err=True)
    if not manifests and not errors:
        click.echo("no flows published", err=True)
