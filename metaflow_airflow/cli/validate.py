"""``metaflow-airflow validate [--store URL | FILE...]``."""

from __future__ import annotations

from pathlib import Path

import click
from click.core import ParameterSource

from metaflow_airflow.cli.options import settings_default, storage_options_option
from metaflow_airflow.errors import ManifestError, MetaflowAirflowError
from metaflow_airflow.manifest.accept import accept_manifest
from metaflow_airflow.manifest.signing import SIGNATURE_SUFFIX, SignatureCheck, signature_check
from metaflow_airflow.settings import Settings
from metaflow_airflow.store.manifest_store import ManifestStore


@click.command(name="validate")
@click.argument("files", nargs=-1, type=click.Path(exists=True, dir_okay=False))
@click.option(
    "--store",
    default=settings_default("store"),
    metavar="URL",
    help="Check every current manifest of this store. Default, when no FILE is given: "
    "$METAFLOW_AIRFLOW_STORE.",
)
@storage_options_option
@click.option(
    "--require-signed",
    is_flag=True,
    help="Also check each manifest's signature (<manifest>.sig) with the signing key "
    "($METAFLOW_AIRFLOW_SIGNING_KEY or $METAFLOW_AIRFLOW_SIGNING_KEY_FILE).",
)
@click.pass_context
def validate_command(
    ctx: click.Context,
    files: tuple[str, ...],
    store: str | None,
    storage_options: dict,
    require_signed: bool,
) -> None:
    """Check manifests as the Airflow loader does (JSON, schema, schema version, DAG id,
    signature); exit code 1 if any is invalid. For CI, before or after publishing.

    \b
    Examples:
      metaflow-airflow validate --store s3://bucket/flows
      metaflow-airflow validate manifest.json other.json --require-signed
    """
    if files and ctx.get_parameter_source("store") is ParameterSource.COMMANDLINE:
        raise click.UsageError("give --store or FILE arguments, not both")
    signatures = _signature_check() if require_signed else None
    if files:
        documents = {
            path: (Path(path).read_bytes(), _optional_bytes(Path(path + SIGNATURE_SUFFIX)), None)
            for path in files
        }
    elif store:
        documents = _store_documents(ManifestStore(store, storage_options), require_signed)
    else:
        raise click.UsageError("give --store URL (or set METAFLOW_AIRFLOW_STORE) or FILE arguments")
    invalid = 0
    for url, (data, signature, dag_id) in documents.items():
        try:
            manifest = accept_manifest(
                data, url, dag_id, signature=signature, signatures=signatures
            )
        except ManifestError as exc:
            invalid += 1
            click.echo(f"invalid\t{exc}", err=True)
        else:
            click.echo(f"ok\t{manifest.dag_id}\t{url}")
    if invalid:
        raise MetaflowAirflowError(f"{invalid} of {len(documents)} manifests are invalid")
    if not documents:
        click.echo("no manifests", err=True)


Document = tuple[bytes | Exception, bytes | None, str | None]


def _store_documents(store: ManifestStore, signatures: bool) -> dict[str, Document]:
    """url → (bytes, signature, dag_id) of every current manifest, read in one bulk request."""
    dag_ids = store.list()
    blobs = store.read_raw_many(dag_ids, signatures=signatures)
    documents: dict[str, Document] = {}
    for dag_id in dag_ids:
        signature = blobs.get(dag_id + SIGNATURE_SUFFIX)
        signature = signature if isinstance(signature, bytes) else None
        documents[store.manifest_url(dag_id)] = (blobs[dag_id], signature, dag_id)
    return documents


def _signature_check() -> SignatureCheck:
    """The loader's check under ``require_signed``; a key that is missing or unusable is a
    usage error here rather than a refusal of every manifest."""
    signatures = signature_check(Settings.from_environment())
    if signatures.key is None:
        raise click.UsageError(signatures.problem)
    return signatures


def _optional_bytes(path: Path) -> bytes | None:
    return path.read_bytes() if path.exists() else None
