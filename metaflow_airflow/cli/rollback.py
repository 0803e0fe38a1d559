"""``metaflow-airflow rollback DAG_ID [--to VERSION]``."""

from __future__ import annotations

import click

from metaflow_airflow.cli.options import storage_options_option, store_option
from metaflow_airflow.manifest.signing import load_signing_key
from metaflow_airflow.store.manifest_store import ManifestStore


@click.command(name="rollback")
@click.argument("dag_id")
@click.option(
    "--to",
    "version",
    metavar="VERSION",
    help="A version name or its 12-character hash, from `history` (default: the version "
    "before the current one; after a delete, the newest).",
)
@store_option
@storage_options_option
def rollback_command(dag_id: str, version: str | None, store: str, storage_options: dict) -> None:
    """Make an earlier version of DAG_ID current again. Airflow runs it from the next parse;
    no version is removed, so a later rollback can undo this one. With a signing key
    configured, the rollback is signed (loaders that require signatures accept no other).

    \b
    Examples:
      metaflow-airflow rollback MyFlow --store s3://bucket/flows
      metaflow-airflow rollback MyFlow --to 20261122T101500.123456Z-0123456789ab
    """
    key = load_signing_key()  # a signed store needs the rollback signed, or loaders refuse it
    current = ManifestStore(store, storage_options).rollback(dag_id, to=version, signing_key=key)
    click.echo(f"{dag_id}: current version {current.name}")
