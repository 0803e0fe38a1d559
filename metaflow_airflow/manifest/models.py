"""The flow manifest: the only thing the publish side and the Airflow side share.

A manifest states *intent* (which steps, in which shape, with which resources and parameters,
run from which code package) and never Airflow operator arguments: the Airflow side turns
intent into operators. It imports neither Airflow nor Metaflow, so both sides can load it.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime, timezone
from functools import cached_property
from typing import Annotated, Literal, Protocol, Union

from pydantic import Field, PrivateAttr, field_validator, model_validator

from metaflow_airflow.manifest.base import (
    DAG_ID_PATTERN,
    ENV_NAME_PATTERN,
    PARAMETER_NAME_PATTERN,
    STEP_NAME_PATTERN,
    BoundedJson,
    ManifestModel,
)
from metaflow_airflow.manifest.checks import check_cron, check_timezone, parents_cycle
from metaflow_airflow.manifest.events import (
    FLOW_ASSET_URI_PATTERN,
    Sensor,
    Trigger,
    flow_asset_uri,
)
from metaflow_airflow.manifest.signing import ACTIVATION_FORMAT

SCHEMA_VERSION = 1

StepType = Literal["start", "linear", "split", "split-switch", "join", "foreach", "end"]
ParameterType = Literal["str", "int", "float", "bool", "json"]
StepName = Annotated[str, Field(pattern=STEP_NAME_PATTERN)]
EnvMap = dict[Annotated[str, Field(pattern=ENV_NAME_PATTERN)], str]


class ParameterSpec(ManifestModel):
    """A Metaflow ``Parameter``; becomes an Airflow ``Param`` of the matching JSON type."""

    name: Annotated[str, Field(pattern=PARAMETER_NAME_PATTERN)]
    type: ParameterType
    default: BoundedJson = None
    required: bool = False
    help: str = ""

    @property
    def env_var(self) -> str:
        """The variable Metaflow's ``init`` command reads this parameter's value from."""
        return "METAFLOW_INIT_" + self.name.upper().replace("-", "_")


class Resources(ManifestModel):
    """What one task of a step asks for (Metaflow's ``@resources`` / ``@kubernetes``)."""

    cpu: float = Field(default=1, gt=0)
    memory_mb: int = Field(default=4096, gt=0)
    disk_mb: int = Field(default=10240, gt=0)
    gpu: int = Field(default=0, ge=0)


class Tmpfs(ManifestModel):
    """A memory-backed scratch volume (Metaflow's ``@kubernetes(use_tmpfs=True)``)."""

    size_mb: int = Field(gt=0)
    path: str = "/metaflow_temp"


class PodSpec(ManifestModel):
    """Kubernetes-only intent for one step (Metaflow's ``@kubernetes`` and its configuration)."""

    image: str | None = None
    image_pull_policy: Literal["Always", "IfNotPresent", "Never"] | None = None
    image_pull_secrets: tuple[str, ...] = ()
    namespace: str = "default"
    service_account: str | None = None
    secrets: tuple[str, ...] = Field(
        default=(), description="Kubernetes secrets whose keys become environment variables."
    )
    node_selector: dict[str, str] = {}
    tolerations: tuple[dict[str, BoundedJson], ...] = ()
    labels: dict[str, str] = {}
    annotations: dict[str, str] = {}
    persistent_volume_claims: dict[str, str] = Field(
        default={}, description="Claim name → mount path."
    )
    tmpfs: Tmpfs | None = None
    shared_memory_mb: int | None = Field(default=None, gt=0)
    security_context: dict[str, BoundedJson] = Field(
        default={}, description="Container security context (Kubernetes field names, snake_case)."
    )
    gpu_vendor: str = "nvidia"


class StepSpec(ManifestModel):
    """One Metaflow step and its place in the graph."""

    name: StepName
    type: StepType
    parents: tuple[StepName, ...] = ()
    next: tuple[StepName, ...] = ()
    foreach: StepName | None = Field(
        default=None,
        description="The innermost foreach step whose body this step belongs to (runs mapped).",
    )
    joins_foreach: StepName | None = Field(
        default=None, description="For the join of a foreach: the foreach step it closes."
    )
    doc: str = ""
    decorator_specs: tuple[str, ...] = Field(
        default=(), description="Decorators added at publish time, as Metaflow --with specs."
    )
    max_user_code_retries: int = Field(
        default=0, ge=0, description="Attempts Metaflow's @retry gives user code (before @catch)."
    )
    retries: int = Field(default=0, ge=0, description="Airflow retries (user + platform errors).")
    retry_delay_seconds: int | None = Field(default=None, ge=0)
    timeout_seconds: int | None = Field(default=None, gt=0)
    resources: Resources = Resources()
    pod: PodSpec = PodSpec()
    env: EnvMap = {}


class ContainerScript(ManifestModel):
    """Shell that Metaflow renders at publish time to run a task inside a container.

    Empty for the local datastore, which a container cannot reach.
    """

    setup: tuple[str, ...] = Field(
        default=(), description="Commands that fetch and unpack the code package."
    )
    bootstrap: dict[str, tuple[str, ...]] = Field(
        default={},
        description="Per step: commands that prepare its Metaflow environment (conda, pypi).",
    )
    capture_logs: str = Field(
        default="{commands}",
        description="Wraps the step commands (at '{commands}') so Metaflow keeps their logs.",
    )
    save_logs: str = Field(default="", description="Uploads the captured logs at the end.")


class CodePackage(ManifestModel):
    """The code package Metaflow uploaded to the flow's datastore."""

    url: str
    sha: str
    metadata: str = Field(description="Metaflow's package metadata (JSON text).")
    extract_env: dict[str, str] = Field(
        default={},
        description="Variables to set once unpacked, '{root}' standing for the unpack folder; "
        "a name ending in ':' replaces, any other is prepended to the current value.",
    )
    container: ContainerScript = ContainerScript()


class MetaflowRuntime(ManifestModel):
    """How a task process must invoke Metaflow to join the published flow's runs."""

    version: str
    flow_file: str = Field(description="The flow script, relative to the code package root.")
    datastore: Literal["local", "s3", "azure", "gs"]
    datastore_root: str
    metadata: str = "local"
    environment: str = "local"
    top_level_options: tuple[str, ...] = Field(
        default=(), description="Options flow decorators add to every command (e.g. @project)."
    )
    env: EnvMap = Field(default={}, description="Metaflow configuration the task needs.")
    user: str


class LocalCompute(ManifestModel):
    """Steps run as processes on the Airflow worker (a laptop, a VM, CI)."""

    kind: Literal["local"] = "local"


class KubernetesCompute(ManifestModel):
    """Steps run as Kubernetes pods through KubernetesPodOperator (see each step's ``pod``)."""

    kind: Literal["kubernetes"] = "kubernetes"
    python: str = "python"
    kubernetes_conn_id: str | None = None
    in_cluster: bool | None = None


Compute = Annotated[Union[LocalCompute, KubernetesCompute], Field(discriminator="kind")]


class ScheduleSpec(ManifestModel):
    """When Airflow starts runs (Metaflow's ``@schedule``)."""

    cron: str = Field(description="Five-field cron, as Airflow reads it.")
    timezone: str | None = Field(default=None, description="IANA name; UTC when absent.")

    @field_validator("cron")
    @classmethod
    def _valid_cron(cls, cron: str) -> str:
        check_cron(cron)
        return cron

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, timezone: str | None) -> str | None:
        if timezone is not None:
            check_timezone(timezone)
        return timezone


class DeploymentSpec(ManifestModel):
    """How the DAG runs in Airflow: set by ``publish`` options."""

    max_workers: int | None = Field(
        default=None, gt=0, description="Concurrent tasks of each foreach body step in a run."
    )
    pool: str | None = None
    is_paused_upon_creation: bool | None = None


class ProjectSpec(ManifestModel):
    """Metaflow's ``@project``: the DAG id is ``project.branch.Flow``, as Metaflow names it."""

    name: str
    branch: str
    production: bool = False


# Event triggers meet Airflow through Assets (Datasets on Airflow 2) named by these URIs:
#   x-metaflow://flows/<name>   emitted by the ``end`` task of every published flow's runs that
#                             succeed; <name> is Metaflow's project-qualified flow name
#                             (``project.branch.Flow`` under @project, else ``Flow``);
#   x-metaflow://events/<name>  the event ``name`` of ``@trigger``: any Airflow task with this
#                             Asset as an outlet emits it.


class FlowManifest(ManifestModel):
    """Everything the Airflow side needs to build and run one published flow."""

    _activated: str = PrivateAttr(default="")

    schema_version: Literal[1] = SCHEMA_VERSION
    dag_id: Annotated[str, Field(pattern=DAG_ID_PATTERN)]
    flow_name: str
    description: str = ""
    published_at: datetime
    published_by: str
    source_file: str = Field(description="Where the flow was published from (informative).")
    compute: Compute
    metaflow: MetaflowRuntime
    code_package: CodePackage
    parameters: tuple[ParameterSpec, ...] = ()
    steps: tuple[StepSpec, ...] = Field(min_length=2)
    tags: tuple[str, ...] = Field(default=(), description="DAG tags and Metaflow run tags.")
    schedule: ScheduleSpec | None = None
    sensors: tuple[Sensor, ...] = ()
    deployment: DeploymentSpec = DeploymentSpec()
    project: ProjectSpec | None = None
    triggers: tuple[Trigger, ...] = Field(
        default=(),
        description="@trigger / @trigger_on_finish: the DAG runs when all these Assets have "
        "new events (or on its schedule, if it has one).",
    )
    asset_uri: str | None = Field(
        default=None,
        pattern=FLOW_ASSET_URI_PATTERN,
        description="The Asset the end task emits when a run succeeds (x-metaflow://flows/"
        "<project-qualified flow name>); null: derived from project and flow_name.",
    )

    @field_validator("schema_version", mode="before")
    @classmethod
    def _not_a_boolean(cls, value: object) -> object:
        """Pydantic's lax Literal[1] would take JSON ``true`` as 1."""
        if isinstance(value, bool):
            raise ValueError("must be the integer 1, not a boolean")
        return value

    @model_validator(mode="after")
    def _check_graph(self) -> FlowManifest:
        names = [s.name for s in self.steps]
        if len(set(names)) != len(names):
            raise ValueError("steps: step names must be unique")
        known = set(names)
        for step in self.steps:
            refs = [*step.parents, *step.next, step.foreach, step.joins_foreach]
            for ref in refs:
                if ref is not None and ref not in known:
                    raise ValueError(f"steps.{step.name}: refers to unknown step {ref!r}")
        if "start" not in known or "end" not in known:
            raise ValueError("steps: a flow needs a 'start' and an 'end' step")
        cycle = parents_cycle({step.name: step.parents for step in self.steps})
        if cycle:
            raise ValueError(f"steps: the parents of {', '.join(cycle)} form a cycle")
        if self.steps_by_name["start"].parents:
            raise ValueError("steps.start: the start step has no parents")
        return self

    @model_validator(mode="after")
    def _check_triggers(self) -> FlowManifest:
        known = {p.name for p in self.parameters}
        for trigger in self.triggers:
            for name in getattr(trigger, "parameters", {}):
                if name not in known:
                    raise ValueError(
                        f"triggers: event {trigger.event!r} maps unknown parameter {name!r}"
                    )
        return self

    @cached_property
    def steps_by_name(self) -> dict[str, StepSpec]:
        return {s.name: s for s in self.steps}

    @property
    def finish_asset_uri(self) -> str:
        """The Asset this flow's successful runs emit (their ``end`` task's outlet)."""
        if self.asset_uri:
            return self.asset_uri
        if self.project is None:
            return flow_asset_uri(self.flow_name)
        return flow_asset_uri(f"{self.project.name}.{self.project.branch}.{self.flow_name}")

    @property
    def activated(self) -> str:
        """When this manifest became current, as its signature states (publish or a signed
        rollback); its publish time when that is not known."""
        return self._activated or self.published_at.astimezone(timezone.utc).strftime(
            ACTIVATION_FORMAT
        )

    @property
    def contains_foreach(self) -> bool:
        return any(s.type == "foreach" for s in self.steps)

    def to_json(self) -> str:
        """Canonical JSON: the same manifest always gives the same bytes."""
        return json.dumps(self.model_dump(mode="json"), sort_keys=True, indent=2) + "\n"

    @property
    def content_hash(self) -> str:
        return hashlib.sha256(self.to_json().encode()).hexdigest()


class ManifestSource(Protocol):
    """Where a task finds the manifest it runs: the manifest itself, or the loader's cache."""

    @property
    def manifest(self) -> FlowManifest: ...


def triggers_summary(manifest: FlowManifest) -> str:
    """What starts the flow's runs besides its schedule, in one line ("" if nothing)."""
    phrases = [trigger.describe() for trigger in manifest.triggers]
    if len(phrases) > 1:
        return " and ".join(phrases) + " (all of them, since the last run)"
    return "".join(phrases)


def manifest_json_schema() -> dict:
    """The JSON Schema of :class:`FlowManifest`, as published in ``docs/manifest.schema.json``."""
    return FlowManifest.model_json_schema()


class CompileOutcome(ManifestModel):
    """What the publish's flow process hands back: the manifest to write, and warnings for the
    user."""

    manifest: FlowManifest
    warnings: tuple[str, ...] = ()
