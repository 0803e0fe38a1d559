"""``python flow.py airflow-manifest ...``: the flow command, in the habit of
``argo-workflows``. ``create`` publishes exactly as ``metaflow-airflow publish`` does (the same
compile, upload and store write, in this flow process), ``trigger`` starts a run through
Airflow's REST API with ``--<parameter> value`` options, and ``status``, ``terminate``,
``list-runs`` and ``delete`` work on the deployment and its runs. The hidden ``compile`` is what
``create`` and ``metaflow-airflow publish`` both run in the flow's own process
(``metaflow_airflow.publish.publisher``): the one compile of this package.

The Deployer (``airflow_manifest_deployer``) runs these commands; with
``--deployer-attribute-file`` they hand it what they made as JSON.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from metaflow import Config, JSONType, parameters
from metaflow._vendor import click
from metaflow.exception import MetaflowException
from metaflow.plugins.airflow.airflow_cli import resolve_dag_name

from metaflow_airflow.errors import MetaflowAirflowError
from metaflow_airflow.publish.publisher import COMPILE_COMMAND, FLOW_COMMAND

TYPE = FLOW_COMMAND


class AirflowManifestException(MetaflowException):
    headline = "metaflow-airflow"


def _fail(exc: Exception) -> AirflowManifestException:
    return AirflowManifestException(str(exc))


@click.group()
def cli() -> None:
    pass


@cli.group(name=TYPE, help="Publish this flow to a metaflow-airflow store and run it on Airflow.")
@click.option(
    "--name",
    default=None,
    help="DAG id (default: the flow's name, or project.branch.Flow under @project).",
)
@click.option("--store", default=None, help="Manifest store URL. Default: $METAFLOW_AIRFLOW_STORE.")
@click.option(
    "--storage-options",
    default=None,
    help="fsspec options for the store, as JSON. Default: $METAFLOW_AIRFLOW_STORAGE_OPTIONS.",
)
@click.option(
    "--api-url",
    default=None,
    help="Airflow API server. Default: "
    "$METAFLOW_AIRFLOW_API_URL (credentials: $METAFLOW_AIRFLOW_API_*).",
)
@click.pass_obj
def airflow_manifest(
    obj: Any, name: str | None, store: str | None, storage_options: str | None, api_url: str | None
) -> None:
    from metaflow_airflow.settings import Settings

    if click.get_current_context().invoked_subcommand == COMPILE_COMMAND:
        return  # the publisher's flow process: the request says it all, `create` linted
    obj.check(obj.graph, obj.flow, obj.environment, pylint=obj.pylint)
    try:
        obj.requested_name = name
        obj.dag_id, _, obj.is_project = resolve_dag_name(name)
        update: dict[str, Any] = {"store": store, "api_url": api_url}
        if storage_options:
            update["storage_options"] = json.loads(storage_options)
        base = Settings.from_environment()
        settings = obj.airflow_settings = Settings.model_validate(
            {**base.model_dump(), **{k: v for k, v in update.items() if v is not None}}
        )
    except (ValueError, MetaflowAirflowError) as exc:
        raise _fail(exc) from exc
    # Airflow knows the DAG as the loader's prefix (METAFLOW_AIRFLOW_DAG_ID_PREFIX) + the id.
    obj.airflow_dag_id = settings.dag_id_prefix + obj.dag_id


def _store(obj: Any) -> Any:
    from metaflow_airflow.store.manifest_store import ManifestStore

    settings = obj.airflow_settings
    if not settings.store:
        raise AirflowManifestException(
            "no manifest store: pass --store or set METAFLOW_AIRFLOW_STORE"
        )
    return ManifestStore(settings.store, settings.storage_options)


def _api(obj: Any) -> Any:
    from metaflow_airflow.rest.client import AirflowApi, ApiCredentials

    return AirflowApi(ApiCredentials.from_settings(obj.airflow_settings))


def _write_attributes(path: str | None, payload: dict[str, Any]) -> None:
    if path:
        with open(path, "w", encoding="utf-8") as out:
            json.dump(payload, out)


@airflow_manifest.command(
    help="Publish this flow: compile it, upload its code package, write "
    "its manifest to the store (as `metaflow-airflow publish`)."
)
@click.option(
    "--compute",
    type=click.Choice(["kubernetes", "local"]),
    default="kubernetes",
    show_default=True,
    help="Run steps as Kubernetes pods, or as processes on the Airflow worker.",
)
@click.option("--image", default=None, help="Default container image for Kubernetes compute.")
@click.option(
    "--tag", "tags", multiple=True, default=None, help="DAG tag and Metaflow run tag (repeatable)."
)
@click.option(
    "--max-workers",
    type=int,
    default=None,
    help="Concurrent tasks of each foreach body step within one run.",
)
@click.option("--worker-pool", "pool", default=None, help="Airflow pool for every task.")
@click.option(
    "--is-paused-upon-creation",
    is_flag=True,
    default=None,
    help="The DAG starts paused when Airflow first sees it.",
)
@click.option(
    "--authorize",
    default=None,
    help="Production token that authorizes taking over another user's deployment.",
)
@click.option(
    "--generate-new-token",
    is_flag=True,
    default=False,
    help="Start a new production namespace for this DAG.",
)
@click.option(
    "--replace",
    is_flag=True,
    default=False,
    help="Publish even if the DAG id belongs to another flow.",
)
@click.option(
    "--allow-plaintext-env",
    is_flag=True,
    default=False,
    help="Publish even if @environment sets variables that look like credentials.",
)
@click.option(
    "--deployer-attribute-file",
    default=None,
    hidden=True,
    help="Write the deployment's name and metadata here (Metaflow's Deployer API).",
)
@click.pass_obj
def create(obj: Any, deployer_attribute_file: str | None, tags: Any, **options: Any) -> None:
    from metaflow_airflow.publish.publisher import PublishRequest, publish_flow

    settings = obj.airflow_settings
    if not settings.store:
        raise AirflowManifestException(
            "no manifest store: pass --store or set METAFLOW_AIRFLOW_STORE"
        )
    try:
        request = PublishRequest(
            store=settings.store,
            storage_options=settings.storage_options,
            dag_id=obj.requested_name,
            tags=tuple(tags or ()),
            **options,
        )
        # The very publish of `metaflow-airflow publish`, with this command's Metaflow options
        # (--branch, --config-value, --with, --datastore...: all that precedes the group).
        result = publish_flow(
            Path(sys.argv[0]).resolve(),
            request,
            metaflow_options=sys.argv[1 : sys.argv.index(TYPE)],
            progress=obj.echo,
        )
    except MetaflowAirflowError as exc:
        raise _fail(exc) from exc
    for warning in result.warnings:
        obj.echo(f"Warning: {warning}")
    obj.echo(
        f"Flow *{obj.flow.name}* published as DAG *{result.dag_id}* ({result.manifest_url}).",
        bold=True,
    )
    _write_attributes(
        deployer_attribute_file,
        {
            "name": result.dag_id,
            "flow_name": obj.flow.name,
            "metadata": obj.metadata.metadata_str(),
            "additional_info": {"manifest_url": result.manifest_url},
        },
    )


@airflow_manifest.command(
    name=COMPILE_COMMAND,
    hidden=True,
    help="Compile this flow and upload its code package (run by the publisher only).",
)
@click.option("--request", required=True, help="A CompileRequest as JSON.")
@click.option("--result", required=True, help="Where to write the CompileOutcome as JSON.")
@click.pass_obj
def compile_manifest(obj: Any, request: str, result: str) -> None:
    from metaflow_airflow.publish.flow_process import compile_to_file

    compile_to_file(obj, request, result)


@parameters.add_custom_parameters(deploy_mode=False)
@airflow_manifest.command(help="Trigger a run of the published flow on Airflow.")
@click.option("--unpause", is_flag=True, default=False, help="Unpause the DAG if it is paused.")
@click.option(
    "--dag-wait",
    type=float,
    default=None,
    help="Seconds to wait for Airflow to parse "
    "a just-published DAG (default: $METAFLOW_AIRFLOW_DAG_WAIT_SECONDS).",
)
@click.option("--run-id-file", default=None, help="Write the Metaflow run id here.")
@click.option(
    "--deployer-attribute-file",
    default=None,
    hidden=True,
    help="Write the run's pathspec and metadata here (Metaflow's Deployer API).",
)
@click.pass_obj
def trigger(
    obj: Any,
    unpause: bool,
    dag_wait: float | None,
    run_id_file: str | None,
    deployer_attribute_file: str | None,
    **kwargs: Any,
) -> None:
    from metaflow_airflow.rest.runs import run_info, trigger_run, typed_conf

    values = {}
    for _, param in obj.flow._get_parameters():
        if isinstance(param, Config):  # baked into the code package at create, not run values
            continue
        value = kwargs.get(param.name.replace("-", "_").lower())
        if value is None:
            continue
        if param.kwargs.get("type") == JSONType:
            value = json.dumps(value)
        elif isinstance(value, parameters.DelayedEvaluationParameter):
            value = value(return_str=True)
        values[param.name] = value
    settings = obj.airflow_settings
    try:
        manifest = _store(obj).read(obj.dag_id)
        conf = typed_conf(manifest.parameters, values)
        with _api(obj) as api:
            dag_run = trigger_run(
                api,
                manifest,
                conf,
                unpause=unpause,
                dag_id_prefix=settings.dag_id_prefix,
                wait_seconds=settings.dag_wait_seconds if dag_wait is None else dag_wait,
                on_wait=obj.echo,
            )
            info = run_info(api, manifest.flow_name, dag_run, settings.ui_url)
    except MetaflowAirflowError as exc:
        raise _fail(exc) from exc
    if run_id_file:
        with open(run_id_file, "w", encoding="utf-8") as out:
            out.write(info.metaflow_run_id)
    _write_attributes(
        deployer_attribute_file,
        {
            "name": obj.dag_id,
            "metadata": obj.metadata.metadata_str(),
            "pathspec": info.pathspec,
            "airflow_run_id": info.run_id,
        },
    )
    obj.echo(
        f"DAG *{obj.dag_id}* triggered on Airflow (run-id *{info.metaflow_run_id}*, "
        f"Airflow run {info.run_id}).",
        bold=True,
    )
    obj.echo(f"See the run in the Airflow UI at {info.airflow_url}")


def _airflow_run(obj: Any, api: Any, run_id: str) -> dict[str, Any]:
    """The Airflow run of a Metaflow run id (``airflow-<hash>``) or an Airflow run id."""
    from metaflow_airflow.rest.runs import find_dag_run

    found = find_dag_run(api, obj.airflow_dag_id, run_id)
    if found is None:
        raise AirflowManifestException(f"no run {run_id!r} of DAG {obj.dag_id!r} on Airflow")
    return found


@airflow_manifest.command(help="Show the state of a run on Airflow.")
@click.option("--run-id", required=True, help="Metaflow run id (airflow-...) or Airflow run id.")
@click.pass_obj
def status(obj: Any, run_id: str) -> None:
    try:
        with _api(obj) as api:
            dag_run = _airflow_run(obj, api, run_id)
    except MetaflowAirflowError as exc:
        raise _fail(exc) from exc
    click.echo(str(dag_run.get("state")))


@airflow_manifest.command(
    help="Stop a run on Airflow: the run is marked failed and its running tasks are killed."
)
@click.option("--run-id", required=True, help="Metaflow run id (airflow-...) or Airflow run id.")
@click.pass_obj
def terminate(obj: Any, run_id: str) -> None:
    try:
        with _api(obj) as api:
            dag_run = _airflow_run(obj, api, run_id)
            api.set_run_state(dag_run["dag_id"], dag_run["dag_run_id"], "failed")
    except MetaflowAirflowError as exc:
        raise _fail(exc) from exc
    obj.echo(f"Run *{run_id}* of DAG *{obj.dag_id}* terminated.", bold=True)


@airflow_manifest.command(name="list-runs", help="List the recent runs of this flow on Airflow.")
@click.option("--limit", type=int, default=10, show_default=True, help="How many, newest first.")
@click.pass_obj
def list_runs(obj: Any, limit: int) -> None:
    from metaflow_airflow.rest.runs import run_info

    try:
        with _api(obj) as api:
            runs = (
                []
                if api.dag(obj.airflow_dag_id) is None
                else api.dag_runs(obj.airflow_dag_id, limit)
            )
            for dag_run in runs:
                info = run_info(api, obj.flow.name, dag_run)
                click.echo(
                    f"{info.metaflow_run_id}  {info.state:8}  {info.start or ''}  {info.run_id}"
                )
    except MetaflowAirflowError as exc:
        raise _fail(exc) from exc


@airflow_manifest.command(
    help="Delete the published flow: its manifest leaves the store (the "
    "loader drops the DAG) and Airflow forgets the DAG and its runs."
)
@click.option(
    "--keep-airflow-history",
    is_flag=True,
    default=False,
    help="Leave the DAG's runs in Airflow's database.",
)
@click.pass_obj
def delete(obj: Any, keep_airflow_history: bool) -> None:
    try:
        _store(obj).delete(obj.dag_id)
        if not keep_airflow_history and obj.airflow_settings.api_url:
            with _api(obj) as api:
                api.delete_dag(obj.airflow_dag_id)
    except MetaflowAirflowError as exc:
        raise _fail(exc) from exc
    obj.echo(f"DAG *{obj.dag_id}* deleted.", bold=True)
