"""``metaflow-airflow list``."""

from __future__ import annotations

import json

import click

from metaflow_airflow.cli.options import storage_options_option, store_option
from metaflow_airflow.store.manifest_store import ManifestStore


@click.command(name="list")
@store_option
@storage_options_option
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="Print a JSON array: one object per flow (invalid manifests with an error).",
)
def list_command(store: str, storage_options: dict, as_json: bool) -> None:
    """List the published flows: DAG id, flow, compute, publisher and time.

    \b
    Examples:
      metaflow-airflow list --store s3://bucket/flows
      metaflow-airflow list --json | jq -r '.[] | select(.valid) | .dag_id'
    """
    manifests, errors = ManifestStore(store, storage_options).read_all()
    if as_json:
        rows = [
            {
                "dag_id": dag_id,
                "valid": True,
                "flow_name": m.flow_name,
                "compute": m.compute.kind,
                "published_by": m.published_by,
                "published_at": m.published_at.isoformat(),
                "version": m.content_hash[:12],
            }
            for dag_id, m in manifests.items()
        ]
        rows += [{"dag_id": d, "valid": False, "error": e.detail} for d, e in errors.items()]
        click.echo(json.dumps(sorted(rows, key=lambda row: row["dag_id"]), indent=2))
        return
    for dag_id, manifest in manifests.items():
        click.echo(
            f"{dag_id}\t{manifest.flow_name}\t{manifest.compute.kind}\t"
            f"{manifest.published_by}\t{manifest.published_at.isoformat()}"
        )
    for dag_id, error in errors.items():
        click.echo(f"{dag_id}\tINVALID\t{error.detail}", err=True)
    if not manifests and not errors:
        click.echo("no flows published", err=True)
