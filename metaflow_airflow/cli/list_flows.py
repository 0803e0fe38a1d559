"""``metaflow-airflow list``."""

from __future__ import annotations

import json
from typing import Any

import click

from metaflow_airflow.cli.options import settings_default, storage_options_option, store_option
from metaflow_airflow.errors import MetaflowAirflowError
from metaflow_airflow.settings import env_var
from metaflow_airflow.store.manifest_store import ManifestStore
from metaflow_airflow.store.objects import shown_url

# The tag every DAG the loader builds carries (placeholders included).
LOADER_TAG = "metaflow"


@click.command(name="list")
@store_option
@storage_options_option
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="Print a JSON array: one object per flow (invalid manifests with an error).",
)
@click.option(
    "--airflow-db",
    metavar="URL",
    help="A running Airflow's metadata database (its sql_alchemy_conn): also say "
    "which file Airflow has each DAG from, and warn where another DAG file took a "
    "published DAG id.",
)
@click.option(
    "--dag-id-prefix",
    default=settings_default("dag_id_prefix"),
    metavar="PREFIX",
    help=f"What the loader puts before each DAG id. Default: ${env_var('dag_id_prefix')}.",
)
def list_command(
    store: str,
    storage_options: dict,
    as_json: bool,
    airflow_db: str | None,
    dag_id_prefix: str,
) -> None:
    """List the published flows: DAG id, flow, compute, publisher and time.

    \b
    Examples:
      metaflow-airflow list --store s3://bucket/flows
      metaflow-airflow list --json | jq -r '.[] | select(.valid) | .dag_id'
      metaflow-airflow list --airflow-db postgresql://airflow@db/airflow
    """
    manifests, errors = ManifestStore(store, storage_options).read_all()
    in_airflow = (
        airflow_files(airflow_db, [dag_id_prefix + d for d in [*manifests, *errors]])
        if airflow_db
        else None
    )
    if as_json:
        rows: list[dict[str, Any]] = [
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
        for row in rows if in_airflow is not None else ():
            found = in_airflow.get(dag_id_prefix + row["dag_id"])
            row["airflow_file"] = found[0] if found else None
            row["airflow_clash"] = bool(found and not found[1])
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
    for dag_id, (path, ours) in sorted((in_airflow or {}).items()):
        if not ours:
            click.echo(
                f"warning: Airflow has DAG {dag_id} from {path}, not from the metaflow-airflow "
                "loader: another DAG file defines the same dag_id, and the published flow does "
                f"not run; rename one, or set {env_var('dag_id_prefix')} for the loader",
                err=True,
            )


def airflow_files(db_url: str, dag_ids: list[str]) -> dict[str, tuple[str, bool]]:
    """Airflow DAG id → (the file Airflow has it from, whether the loader built it: it carries
    the loader's tag), from Airflow's metadata database, for the ``dag_ids`` it knows."""
    import sqlalchemy as sa

    ids = sa.bindparam("ids", expanding=True)
    try:
        engine = sa.create_engine(db_url)
        with engine.connect() as connection:
            files = connection.execute(
                sa.text("SELECT dag_id, fileloc FROM dag WHERE dag_id IN :ids").bindparams(ids),
                {"ids": dag_ids},
            ).all()
            tagged = connection.execute(
                sa.text(
                    "SELECT dag_id FROM dag_tag WHERE name = :tag AND dag_id IN :ids"
                ).bindparams(ids),
                {"ids": dag_ids, "tag": LOADER_TAG},
            ).all()
        engine.dispose()
    except (sa.exc.SQLAlchemyError, ImportError) as exc:
        message = " ".join(str(exc).split("\n")[0].split())
        raise MetaflowAirflowError(
            f"cannot read Airflow's metadata database {shown_url(db_url)}: {message}; give "
            "--airflow-db the sql_alchemy_conn of Airflow's [database] configuration"
        ) from exc
    loader = {row[0] for row in tagged}
    return {dag_id: (fileloc, dag_id in loader) for dag_id, fileloc in files}
