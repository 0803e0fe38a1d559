"""``metaflow-airflow runs DAG_ID``."""

from __future__ import annotations

import json

import click

from metaflow_airflow.cli.api import api_client, api_url_option
from metaflow_airflow.cli.options import storage_options_option, store_option
from metaflow_airflow.rest.runs import run_info
from metaflow_airflow.settings import Settings
from metaflow_airflow.store.manifest_store import ManifestStore


@click.command(name="runs")
@click.argument("dag_id")
@click.option(
    "--limit",
    type=click.IntRange(min=1),
    default=10,
    show_default=True,
    help="How many runs, newest first.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the runs as a JSON list.")
@api_url_option
@store_option
@storage_options_option
def runs_command(
    dag_id: str,
    limit: int,
    as_json: bool,
    api_url: str | None,
    store: str,
    storage_options: dict,
) -> None:
    """List a published flow's recent runs on Airflow: state, start, duration, Metaflow run id.

    \b
    Examples:
      metaflow-airflow runs ParamFlow
      metaflow-airflow runs ParamFlow --limit 50 --json | jq '.[] | select(.state=="failed")'
    """
    flow_name = ManifestStore(store, storage_options).read(dag_id).flow_name
    settings = Settings.from_environment()
    ui_url = settings.ui_url
    airflow_dag_id = settings.dag_id_prefix + dag_id  # as the loader names it in Airflow
    with api_client(api_url) as api:
        if api.dag(airflow_dag_id) is None:
            click.echo(
                f"DAG {airflow_dag_id!r} is not on {api.base_url} (not parsed yet?)", err=True
            )
            runs = []
        else:
            runs = [
                run_info(api, flow_name, r, ui_url) for r in api.dag_runs(airflow_dag_id, limit)
            ]
    if as_json:
        click.echo(json.dumps([r.as_dict() for r in runs], indent=2, sort_keys=True))
        return
    rows = [("STATE", "START", "DURATION", "METAFLOW RUN", "AIRFLOW RUN")]
    for r in runs:
        duration = "" if r.duration_seconds is None else f"{r.duration_seconds:g}s"
        rows.append((r.state, (r.start or "")[:19], duration, r.metaflow_run_id, r.run_id))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        click.echo("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip())
