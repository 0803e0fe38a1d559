"""The publish side's child process: the user's flow file under Metaflow's own CLI, running the
shipped extension's command ``airflow-manifest compile`` (registered through Metaflow's plugin
mechanism, ``metaflow_extensions/airflow_manifest``), which compiles the flow and uploads its
code package. It hands the manifest back and the parent writes it to the store, so store
credentials never reach this process.

Usage (by :func:`metaflow_airflow.publish.publisher.publish_flow` only)::

    python -m metaflow_airflow.publish.flow_process FLOW.py [metaflow options] \
        airflow-manifest compile --request JSON --result FILE
"""

from __future__ import annotations

import gc
import inspect
import json
import os
import re
import runpy
import shlex
import sys
from datetime import datetime, timezone
from typing import Any

from metaflow import current, metaflow_config
from metaflow.decorators import flow_decorators
from metaflow.exception import MetaflowException
from metaflow.mflog import BASH_SAVE_LOGS, bash_capture_logs
from metaflow.package import MetaflowPackage
from metaflow.plugins.airflow.airflow_cli import resolve_dag_name, resolve_token
from metaflow.plugins.aws.step_functions.production_token import _path as production_token_path
from metaflow.user_configs.config_options import ConfigInput
from metaflow.util import dict_to_cli_options, get_username

from metaflow_airflow.errors import CompileError, MetaflowAirflowError, PublishError
from metaflow_airflow.manifest.base import DAG_ID_PATTERN
from metaflow_airflow.manifest.models import (
    CodePackage,
    CompileOutcome,
    ContainerScript,
    DeploymentSpec,
    FlowManifest,
    KubernetesCompute,
    LocalCompute,
    MetaflowRuntime,
    ProjectSpec,
)
from metaflow_airflow.publish.flow_decorators import (
    compile_finish_asset,
    compile_schedule,
    compile_sensors,
    compile_triggers,
    refuse_unsupported_flow_decorators,
)
from metaflow_airflow.publish.parameters import compile_parameters
from metaflow_airflow.publish.publisher import (
    COMPILED_MARK,
    GO_AHEAD,
    PROGRESS_MARK,
    CompileRequest,
)
from metaflow_airflow.publish.secrets_check import refuse_plaintext_secrets
from metaflow_airflow.publish.steps import compile_steps
from metaflow_airflow.store.clouds.registry import cloud_for_datastore
from metaflow_airflow.store.locking import folder_lock

_EXTRACT_ROOT = "{root}"


def compile_to_file(obj: Any, request: str, result: str) -> None:
    """The body of ``airflow-manifest compile``: ``request`` is a :class:`CompileRequest` as
    JSON; the :class:`CompileOutcome` (or the error) goes to the file ``result`` as JSON."""
    try:
        outcome = compile_and_upload(obj, CompileRequest.model_validate_json(request))
        payload = outcome.model_dump(mode="json")
    except MetaflowAirflowError as exc:
        kind = "compile" if isinstance(exc, CompileError) else "publish"
        payload = {"error": str(exc), "kind": kind}
    with open(result, "w", encoding="utf-8") as out:
        json.dump(payload, out)


def compile_and_upload(obj: Any, request: CompileRequest) -> CompileOutcome:
    """Compile first, so that nothing is uploaded for a flow that cannot run on Airflow."""
    flow, graph = obj.flow, obj.graph
    _progress(f"compiling {flow.name}...")
    dag_id, token_prefix, is_project = _dag_name(request.dag_id)
    _check_dag_id(dag_id)
    compute = _compute(request, obj)
    steps = compile_steps(graph, kubernetes=compute.kind == "kubernetes", image=request.image)
    refuse_plaintext_secrets(steps, allow=request.allow_plaintext_env)
    parameters = compile_parameters(flow)
    schedule = compile_schedule(flow, parameters)
    sensors = compile_sensors(flow)
    refuse_unsupported_flow_decorators(flow)
    triggers = compile_triggers(flow, parameters)
    finish_asset = compile_finish_asset(flow)
    _wait_for_go_ahead(dag_id, flow.name, obj)

    # Metaflow rewrites its token file in place: concurrent first publishes of one flow would
    # read it half-written, so they take turns.
    with folder_lock(os.path.dirname(production_token_path(token_prefix))):
        token = resolve_token(
            dag_id,
            token_prefix,
            obj,
            request.authorize,
            None,
            request.generate_new_token,
            is_project,
        )
    _progress(f"packaging code and uploading it to the {obj.flow_datastore.TYPE} datastore...")
    package = _upload_code_package(obj)
    manifest = FlowManifest(
        dag_id=dag_id,
        flow_name=flow.name,
        description=inspect.cleandoc(flow.__doc__ or ""),  # its later lines are indented
        published_at=datetime.now(timezone.utc).replace(microsecond=0),
        published_by=get_username() or "unknown",
        source_file=os.path.abspath(sys.argv[0]),
        compute=compute,
        metaflow=_metaflow_runtime(obj, token),
        code_package=package,
        parameters=parameters,
        steps=steps,
        tags=tuple(sorted(set(request.tags))),
        schedule=schedule,
        sensors=sensors,
        deployment=DeploymentSpec(
            max_workers=request.max_workers,
            pool=request.pool,
            is_paused_upon_creation=request.is_paused_upon_creation,
        ),
        project=_project() if is_project else None,
        triggers=triggers,
        asset_uri=finish_asset,
    )
    return CompileOutcome(manifest=manifest, warnings=_warnings(compute, obj.metadata.TYPE))


def _wait_for_go_ahead(dag_id: str, flow_name: str, obj: Any) -> None:
    """Say what was compiled and where its code package goes, and wait until the publisher
    agrees (the store can be written, the datastore answers, the DAG id is this flow's): a
    publish that stops here has uploaded nothing."""
    datastore, root = obj.flow_datastore.TYPE, obj.flow_datastore.datastore_root
    compiled = {
        "dag_id": dag_id,
        "flow_name": flow_name,
        "flow_file": os.path.basename(sys.argv[0]),
        "datastore": datastore,
        "datastore_root": root,
        "datastore_env": _runtime_config_env(datastore, root, obj.metadata.TYPE),
    }
    print(COMPILED_MARK + json.dumps(compiled), file=sys.stderr, flush=True)
    if sys.stdin.readline().strip() != GO_AHEAD:
        raise PublishError("the publisher stopped before the code package was uploaded")


def _progress(message: str) -> None:
    """A progress line for :func:`~metaflow_airflow.publish.publisher.publish_flow` to pass on."""
    print(PROGRESS_MARK + message, file=sys.stderr, flush=True)


def _warnings(compute: LocalCompute | KubernetesCompute, metadata: str) -> tuple[str, ...]:
    found = []
    if compute.kind == "kubernetes" and metadata == "local":
        found.append(
            "--compute kubernetes with local metadata: each pod keeps its run's metadata and "
            "loses it when it ends, so the Client API cannot find Airflow runs; use "
            "--metadata service (a Metaflow metadata service) in production"
        )
    if metadata == "service" and (compute.kind == "kubernetes" or metaflow_config.SERVICE_HEADERS):
        found.append(
            "the metadata service's URL and headers (METAFLOW_SERVICE_URL, "
            "METAFLOW_SERVICE_HEADERS) are not stored in the manifest (they are the "
            "deployment's, and headers hold credentials every store reader could read): set "
            "them where the tasks run, in the Airflow workers' environment or Metaflow "
            "configuration (--compute local) or from a Kubernetes secret "
            "(@kubernetes(secrets=[...]))"
        )
    return tuple(found)


def _dag_name(requested: str | None) -> tuple[str, str, bool]:
    """DAG id and production-token prefix, exactly as Metaflow's ``airflow create`` names them
    (``project.branch.Flow`` under ``@project``)."""
    try:
        return resolve_dag_name(requested)
    except MetaflowException as exc:
        raise CompileError(str(exc).strip()) from exc


def _project() -> ProjectSpec:
    return ProjectSpec(
        name=current.project_name,
        branch=current.branch_name,
        production=bool(current.is_production),
    )


def _check_dag_id(dag_id: str) -> None:
    if not re.fullmatch(DAG_ID_PATTERN, dag_id):
        raise CompileError(
            f"DAG id {dag_id!r} is not valid on Airflow (letters, digits, '_', '.', '-' only)"
        )


def _compute(request: CompileRequest, obj: Any) -> LocalCompute | KubernetesCompute:
    datastore = obj.flow_datastore.TYPE
    if request.compute == "local":
        if obj.environment.TYPE != "local":
            raise CompileError(
                f"--compute local runs steps in the Airflow worker's Python; the "
                f"{obj.environment.TYPE!r} environment (@conda/@pypi) needs --compute kubernetes"
            )
        return LocalCompute()
    if datastore == "local":
        raise CompileError(
            "--compute kubernetes needs a cloud datastore (s3, azure or gs): pods cannot read "
            "the local datastore; publish with --datastore s3 or use --compute local"
        )
    c = metaflow_config
    if c.AIRFLOW_KUBERNETES_CONN_ID:
        return KubernetesCompute(kubernetes_conn_id=c.AIRFLOW_KUBERNETES_CONN_ID, in_cluster=False)
    return KubernetesCompute()


def _upload_code_package(obj: Any) -> CodePackage:
    package = MetaflowPackage(
        obj.flow,
        obj.environment,
        obj.echo,
        suffixes=obj.package_suffixes,
        flow_datastore=obj.flow_datastore,
    )
    url, sha = package.package_url(), package.package_sha()
    if url is None:  # Metaflow builds but does not upload when FEAT_ALWAYS_UPLOAD is off
        url, sha = obj.flow_datastore.save_data([package.blob], len_hint=1)[0]
    metadata = package.package_metadata
    return CodePackage(
        url=url,
        sha=sha,
        metadata=metadata,
        extract_env=MetaflowPackage.get_post_extract_env_vars(metadata, dest_dir=_EXTRACT_ROOT),
        container=_container_script(obj, url, metadata),
    )


def _container_script(obj: Any, url: str, metadata: str) -> ContainerScript:
    datastore = obj.flow_datastore.TYPE
    if datastore == "local":
        return ContainerScript()
    setup = obj.environment.get_package_commands(url, datastore, metadata)
    bootstrap = {
        node.name: tuple(
            _unquote(c) for c in obj.environment.bootstrap_commands(node.name, datastore)
        )
        for node in obj.graph
    }
    # Metaflow renders these for embedding in `bash -c "..."`; store the plain shell.
    return ContainerScript(
        setup=tuple(_unquote(cmd) for cmd in setup),
        bootstrap={name: cmds for name, cmds in sorted(bootstrap.items()) if cmds},
        capture_logs=_unquote(bash_capture_logs("{commands}")),
        save_logs=BASH_SAVE_LOGS,
    )


def _unquote(command: str) -> str:
    return shlex.split('"%s"' % command)[0]


def _metaflow_runtime(obj: Any, production_token: str) -> MetaflowRuntime:
    datastore = obj.flow_datastore.TYPE
    top_level: dict[str, Any] = {}
    for deco in flow_decorators(obj.flow):
        top_level.update(deco.get_top_level_options())
    return MetaflowRuntime(
        version=obj.environment.get_environment_info()["metaflow_version"],
        flow_file=os.path.basename(sys.argv[0]),
        datastore=datastore,
        datastore_root=obj.flow_datastore.datastore_root,
        metadata=obj.metadata.TYPE,
        environment=obj.environment.TYPE,
        top_level_options=tuple(dict_to_cli_options(top_level)),
        env={
            **_runtime_config_env(datastore, obj.flow_datastore.datastore_root, obj.metadata.TYPE),
            **config_env(obj.flow),
            # Runs live in the namespace production:<token>, as with Metaflow's own schedulers.
            "METAFLOW_PRODUCTION_TOKEN": production_token,
        },
        user=get_username() or "unknown",
    )


def config_env(flow: Any) -> dict[str, str]:
    """The flow's Configs are fixed at publish, as on Argo Workflows: Metaflow keeps their
    values in the code package, and every task reads them from there (``kv.<name>``)."""
    configs = {
        param.name: ConfigInput.make_key_name(param.name)
        for _, param in flow._get_parameters()
        if param.IS_CONFIG_PARAMETER
    }
    return {"METAFLOW_FLOW_CONFIG_VALUE": json.dumps(configs, sort_keys=True)} if configs else {}


def _runtime_config_env(datastore: str, root: str, metadata: str) -> dict[str, str]:
    """The Metaflow configuration a task needs to find this flow's datastore and metadata."""
    c = metaflow_config
    env: dict[str, Any] = {
        "METAFLOW_DEFAULT_DATASTORE": datastore,
        "METAFLOW_DEFAULT_METADATA": metadata,
        **cloud_for_datastore(datastore).task_config(root, c, os.environ),
    }
    # Where @secrets finds its backend.
    env["METAFLOW_DEFAULT_SECRETS_BACKEND_TYPE"] = c.DEFAULT_SECRETS_BACKEND_TYPE
    env["METAFLOW_AWS_SECRETS_MANAGER_DEFAULT_REGION"] = c.AWS_SECRETS_MANAGER_DEFAULT_REGION
    env["METAFLOW_GCP_SECRET_MANAGER_PREFIX"] = c.GCP_SECRET_MANAGER_PREFIX
    env["METAFLOW_AZURE_KEY_VAULT_PREFIX"] = c.AZURE_KEY_VAULT_PREFIX
    return {k: str(v) for k, v in sorted(env.items()) if v not in (None, "")}


def main(argv: list[str]) -> None:
    """Run ``argv[0]`` (the flow file) as ``__main__`` with the rest as its command line."""
    flow_file = argv[0]
    sys.argv = [flow_file, *argv[1:]]
    sys.path.insert(0, os.path.dirname(os.path.abspath(flow_file)))
    try:
        module = runpy.run_path(flow_file, run_name="__main__")
        # Metaflow's CLI exits when the flow runs: still here, the file ran no flow.
        print(_no_flow_ran(module), file=sys.stderr)
        sys.exit(1)
    finally:
        # The collector's pass at exit would scan all of Metaflow's and boto3's objects only to
        # free memory that exiting frees anyway, while the publisher waits (docs/performance.md).
        gc.freeze()


def _no_flow_ran(module: dict[str, Any]) -> str:
    """Why running the flow file started no flow: it defines no ``FlowSpec`` subclass, or
    never calls one."""
    from metaflow import FlowSpec

    flows = sorted(
        name
        for name, value in module.items()
        if isinstance(value, type) and issubclass(value, FlowSpec) and value is not FlowSpec
    )
    if not flows:
        return (
            "no FlowSpec subclass found: a flow file defines a class that extends "
            "metaflow.FlowSpec and runs it"
        )
    return (
        f"{', '.join(flows)} is defined but never run: end the file with "
        f'`if __name__ == "__main__": {flows[0]}()`'
    )


if __name__ == "__main__":
    main(sys.argv[1:])
