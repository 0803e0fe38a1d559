"""``metaflow-airflow trigger DAG_ID [--param NAME=VALUE ...] [--wait] [--json]``."""

from __future__ import annotations

import json
import sys

import click

from metaflow_airflow.cli.api import api_client, api_url_option
from metaflow_airflow.cli.options import storage_options_option, store_option
from metaflow_airflow.rest.runs import (
    failed_steps,
    parse_param_pairs,
    run_info,
    trigger_run,
    typed_conf,
    wait_for_run,
)
from metaflow_airflow.settings import Settings
from metaflow_airflow.store.manifest_store import ManifestStore


@click.command(name="trigger")
@click.argument("dag_id")
@click.option(
    "--param",
    "params",
    multiple=True,
    metavar="NAME=VALUE",
    help="A flow Parameter for this run, typed as the published flow declares it (repeatable).",
)
@click.option("--wait", is_flag=True, help="Follow the run to its end; exit 1 if it fails.")
@click.option("--unpause", is_flag=True, help="Unpause the DAG first if it is paused.")
@click.option("--json", "as_json", is_flag=True, help="Print the run as JSON.")
@click.option(
    "--dag-wait",
    type=click.FloatRange(min=0),
    default=None,
    metavar="SECONDS",
    help="How long to wait for Airflow to parse a just-published DAG. "
    "Default: $METAFLOW_AIRFLOW_DAG_WAIT_SECONDS (120).",
)
@api_url_option
@store_option
@storage_options_option
def trigger_command(
    dag_id: str,
    params: tuple[str, ...],
    wait: bool,
    unpause: bool,
    as_json: bool,
    dag_wait: float | None,
    api_url: str | None,
    store: str,
    storage_options: dict,
) -> None:
    """Start a run of a published flow on Airflow, through Airflow's REST API.

    Parameters are checked against the published manifest before anything is sent. Prints
    the Airflow run id, the Metaflow pathspec and links to both UIs.

    \b
    Examples:
      metaflow-airflow trigger ParamFlow --param alpha=0.5 --param tags='["a"]'
      metaflow-airflow trigger ParamFlow --wait          # progress, exit 1 on failure
      metaflow-airflow trigger ParamFlow --json | jq -r .pathspec
    """
    manifest = ManifestStore(store, storage_options).read(dag_id)
    conf = typed_conf(manifest.parameters, parse_param_pairs(params))
    settings = Settings.from_environment()
    with api_client(api_url) as api:
        dag_run = trigger_run(
            api,
            manifest,
            conf,
            unpause=unpause,
            dag_id_prefix=settings.dag_id_prefix,
            wait_seconds=settings.dag_wait_seconds if dag_wait is None else dag_wait,
            on_wait=lambda line: click.echo(line, err=True),
        )
        info = run_info(api, manifest.flow_name, dag_run, settings.ui_url)
        if as_json and not wait:
            click.echo(json.dumps(info.as_dict(), indent=2, sort_keys=True))
            return
        if not as_json:
            click.echo(f"run_id: {info.run_id}")
            click.echo(f"pathspec: {info.pathspec}")
            click.echo(f"airflow: {info.airflow_url}")
            if info.metaflow_ui_url:
                click.echo(f"metaflow: {info.metaflow_ui_url}")
        if not wait:
            return
        final = wait_for_run(
            api, info.dag_id, info.run_id, on_progress=lambda p: click.echo(p.line(), err=True)
        )
        finished = run_info(
            api, manifest.flow_name, api.dag_run(info.dag_id, info.run_id), settings.ui_url
        )
        if as_json:
            click.echo(json.dumps(finished.as_dict(), indent=2, sort_keys=True))
        if final.state != "success":
            for task_id, tail in failed_steps(api, info.dag_id, info.run_id):
                click.echo(f"step {task_id} failed; the end of its log:", err=True)
                click.echo(tail, err=True)
            click.echo(f"error: run {info.run_id} of {info.dag_id} {final.state}", err=True)
            sys.exit(1)
