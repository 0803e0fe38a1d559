"""The deployed flow and its triggered runs (Metaflow's ``DeployedFlow`` / ``TriggeredRun``)
for ``Deployer(...).airflow_manifest()``.

``trigger`` and ``delete`` run the flow command, as Metaflow's deployers do; a run's ``status``
and ``terminate`` call Airflow's REST API directly (settings from the deployer's environment and
its ``store`` / ``api_url`` arguments); ``from_deployment`` rebuilds a deployer from the
published manifest, so a dotted ``project.branch.Flow`` DAG id works as any other.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, ClassVar

from metaflow.client.core import get_metadata
from metaflow.exception import MetaflowException
from metaflow.runner.deployer import (
    DeployedFlow,
    Deployer,
    TriggeredRun,
    generate_fake_flow_file_contents,
)
from metaflow.runner.utils import (
    get_lower_level_group,
    handle_timeout,
    make_process_error_message,
    temporary_fifo,
)

# Manifest parameter types -> the type names Metaflow's fake flow file understands.
_FAKE_FLOW_TYPES = {"str": "str", "int": "int", "float": "float", "bool": "bool", "json": "JSON"}


def _settings(environ: Mapping[str, str], deployer_kwargs: Mapping[str, Any]) -> Any:
    """The settings the flow command would use: its environment, then its group options."""
    from metaflow_airflow.settings import Settings

    base = Settings.from_environment(environ).model_dump()
    for name in ("store", "api_url"):
        if deployer_kwargs.get(name):
            base[name] = deployer_kwargs[name]
    if deployer_kwargs.get("storage_options"):
        base["storage_options"] = json.loads(deployer_kwargs["storage_options"])
    return Settings.model_validate(base)


def _api(deployer: Any) -> Any:
    from metaflow_airflow.rest.client import AirflowApi, ApiCredentials

    settings = _settings(deployer.env_vars, deployer.deployer_kwargs)
    return AirflowApi(ApiCredentials.from_settings(settings))


def _run_flow_command(deployer: Any, command_name: str, **kwargs: Any) -> Any:
    """Run ``python flow.py airflow-manifest COMMAND ...``; the finished command object."""
    command = getattr(
        get_lower_level_group(
            deployer.api, deployer.top_level_kwargs, deployer.TYPE, deployer.deployer_kwargs
        ),
        command_name,
    )(**kwargs)
    pid = deployer.spm.run_command(
        [sys.executable, *command],
        env=deployer.env_vars,
        cwd=deployer.cwd,
        show_output=deployer.show_output,
    )
    return deployer.spm.get(pid)


class AirflowManifestTriggeredRun(TriggeredRun):
    """A run of a published flow on Airflow."""

    def __init__(self, deployer: Any, content: str) -> None:
        super().__init__(deployer, content)
        self.airflow_run_id: str | None = json.loads(content).get("airflow_run_id")

    def _dag_run(self, api: Any) -> dict[str, Any] | None:
        from metaflow_airflow.rest.runs import find_dag_run

        run_id = self.airflow_run_id or self.pathspec.split("/")[1]
        settings = _settings(self.deployer.env_vars, self.deployer.deployer_kwargs)
        found = find_dag_run(api, settings.dag_id_prefix + self.deployer.name, run_id)
        if found is not None:
            self.airflow_run_id = found["dag_run_id"]
        return found

    @property
    def status(self) -> str | None:
        """The Airflow run's state (``queued``, ``running``, ``success``, ``failed``), or None
        if Airflow has no such run."""
        with _api(self.deployer) as api:
            found = self._dag_run(api)
        return None if found is None else str(found.get("state"))

    @property
    def is_running(self) -> bool:
        return self.status in ("queued", "running")

    def wait_for_completion(self, check_interval: int = 5, timeout: int | None = None) -> None:
        """Until the Airflow run finishes; TimeoutError after ``timeout`` seconds."""
        start = time.monotonic()
        while self.is_running:
            if timeout is not None and time.monotonic() - start > timeout:
                raise TimeoutError("Airflow run did not finish within the timeout")
            time.sleep(check_interval)

    def terminate(self, **kwargs: Any) -> bool:
        """Stop the run: Airflow marks it failed and kills its running tasks. True if it was
        found and marked."""
        with _api(self.deployer) as api:
            found = self._dag_run(api)
            if found is None:
                return False
            api.set_run_state(found["dag_id"], found["dag_run_id"], "failed")
        return True


class AirflowManifestDeployedFlow(DeployedFlow):
    """A flow published to a metaflow-airflow store, run by Airflow."""

    TYPE: ClassVar[str | None] = "airflow-manifest"

    def trigger(
        self, run_params: Sequence[str] | None = None, **kwargs: Any
    ) -> AirflowManifestTriggeredRun:
        """Start a run; keyword arguments are the flow's Parameters (typed as published), and
        ``run_params`` more of them as ``NAME=VALUE`` texts (a list; a tuple is taken too), for
        names that are no Python identifiers. A paused DAG is unpaused (``unpause=False``
        refuses it instead).

        Returns
        -------
        AirflowManifestTriggeredRun
        """
        from metaflow_airflow.rest.runs import parse_param_pairs

        run_params = list(run_params) if run_params else []
        for name, value in parse_param_pairs(run_params).items():
            kwargs[name.replace("-", "_")] = value
        kwargs.setdefault("unpause", True)
        with temporary_fifo() as (attribute_file_path, attribute_file_fd):
            command_obj = _run_flow_command(
                self.deployer, "trigger", deployer_attribute_file=attribute_file_path, **kwargs
            )
            content = handle_timeout(
                attribute_file_fd, command_obj, self.deployer.file_read_timeout
            )
            command_obj.sync_wait()
            if command_obj.process.returncode == 0:
                return AirflowManifestTriggeredRun(deployer=self.deployer, content=content)
        # (a command that fails before writing the attribute file raises in handle_timeout)
        raise MetaflowException(make_process_error_message(command_obj))

    def delete(self, **kwargs: Any) -> bool:
        """Remove the manifest from the store (the loader drops the DAG) and the DAG's records
        from Airflow. True if the command succeeded."""
        command_obj = _run_flow_command(self.deployer, "delete", **kwargs)
        command_obj.sync_wait()
        return command_obj.process.returncode == 0

    @classmethod
    def from_deployment(cls, identifier: str, metadata: str | None = None) -> Any:
        """The deployed flow of a DAG id (``project.branch.Flow`` under @project), read from
        the store of ``$METAFLOW_AIRFLOW_STORE``."""
        from metaflow_airflow.errors import MetaflowAirflowError
        from metaflow_airflow.store.manifest_store import ManifestStore

        settings = _settings(os.environ, {})
        if not settings.store:
            raise MetaflowException("no manifest store: set METAFLOW_AIRFLOW_STORE")
        try:
            manifest = ManifestStore(settings.store, settings.storage_options).read(identifier)
        except MetaflowAirflowError as exc:
            raise MetaflowException(f"no deployed flow {identifier!r}: {exc}") from exc
        param_info = {
            p.name: {
                "name": p.name,
                "python_var_name": p.name.replace("-", "_"),
                "type": _FAKE_FLOW_TYPES[p.type],
                "description": p.help.replace("'''", '"""'),
                "is_required": p.required,
            }
            for p in manifest.parameters
        }
        project = manifest.project
        # Under @project the DAG id is project.branch.Flow: the class is its last part, never
        # the dotted id itself (not a Python name).
        if project is not None and identifier.split(".")[-1] != manifest.flow_name:
            raise MetaflowException(f"{identifier!r} does not name flow {manifest.flow_name!r}")
        contents = generate_fake_flow_file_contents(
            flow_name=manifest.flow_name,
            param_info=param_info,
            project_name=project.name if project else None,
        )
        folder = tempfile.mkdtemp(prefix="metaflow-airflow-deployment-")
        flow_file = os.path.join(folder, f"{manifest.flow_name.lower()}.py")
        with open(flow_file, "w", encoding="utf-8") as out:
            out.write(contents)
        env = {"METAFLOW_USER": manifest.metaflow.user}
        if project is None:
            deployer = Deployer(flow_file, env=env).airflow_manifest(name=identifier)
        else:
            deployer = Deployer(flow_file, env=env, **_project_options(project)).airflow_manifest()
        deployer.name = identifier
        deployer.flow_name = manifest.flow_name
        deployer.metadata = get_metadata() if metadata is None else metadata
        return cls(deployer=deployer)

    @classmethod
    def list_deployed_flows(cls, flow_name: str | None = None) -> Iterator[Any]:
        """Every flow published to the store of ``$METAFLOW_AIRFLOW_STORE`` (of ``flow_name``
        only, if given)."""
        from metaflow_airflow.store.manifest_store import ManifestStore

        settings = _settings(os.environ, {})
        if not settings.store:
            raise MetaflowException("no manifest store: set METAFLOW_AIRFLOW_STORE")
        manifests, _errors = ManifestStore(settings.store, settings.storage_options).read_all()
        for dag_id, manifest in sorted(manifests.items()):
            if flow_name is None or manifest.flow_name == flow_name:
                yield cls.from_deployment(dag_id)

    @classmethod
    def get_triggered_run(
        cls, identifier: str, run_id: str, metadata: str | None = None
    ) -> AirflowManifestTriggeredRun:
        """A run of the deployed flow by its Metaflow run id (``airflow-...``)."""
        deployed = cls.from_deployment(identifier, metadata)
        content = json.dumps(
            {
                "metadata": deployed.deployer.metadata,
                "pathspec": f"{deployed.deployer.flow_name}/{run_id}",
                "name": identifier,
            }
        )
        return AirflowManifestTriggeredRun(deployer=deployed.deployer, content=content)


def _project_options(project: Any) -> dict[str, Any]:
    """``branch`` / ``production`` for Deployer(...) that name the published @project branch."""
    branch = project.branch
    if branch == "prod":
        return {"production": True}
    if branch.startswith("prod."):
        return {"production": True, "branch": branch[len("prod.") :]}
    if branch.startswith("test."):
        return {"branch": branch[len("test.") :]}
    return {}  # user.<name>: the published user's own branch, from METAFLOW_USER
