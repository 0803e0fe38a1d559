"""How a flow meets other work in Airflow: Metaflow's flow-level Airflow sensors, and the
``@trigger`` / ``@trigger_on_finish`` event triggers, carried by Assets.

Event triggers meet Airflow through Assets (Datasets on Airflow 2) named by these URIs:

- ``x-metaflow://flows/<name>``: emitted by the ``end`` task of every published flow's runs
  that succeed; ``<name>`` is Metaflow's project-qualified flow name (``project.branch.Flow``
  under ``@project``, else ``Flow``);
- ``x-metaflow://events/<name>``: the event ``name`` of ``@trigger``; any Airflow task with this
  Asset as an outlet emits it.

The scheme starts with ``x-``, Airflow's mark of a custom scheme: any other scheme makes the
first Asset of a parse load every provider's asset URI handlers (boto3 and more).
"""

from __future__ import annotations

from typing import Annotated, Literal, Union

from pydantic import Field, model_validator

from metaflow_airflow.manifest.base import (
    ASSET_NAME,
    ASSET_NAME_PATTERN,
    PARAMETER_NAME_PATTERN,
    ManifestModel,
)

FLOW_ASSET_PREFIX = "x-metaflow://flows/"
EVENT_ASSET_PREFIX = "x-metaflow://events/"
FLOW_ASSET_URI_PATTERN = f"^{FLOW_ASSET_PREFIX}{ASSET_NAME}$"


def flow_asset_uri(qualified_flow_name: str) -> str:
    """The Asset a flow's successful runs emit: ``x-metaflow://flows/<project.branch.Flow>``."""
    return FLOW_ASSET_PREFIX + qualified_flow_name


def event_asset_uri(event_name: str) -> str:
    """The Asset that stands for the event ``event_name``: ``x-metaflow://events/<name>``."""
    return EVENT_ASSET_PREFIX + event_name


class SensorSpec(ManifestModel):
    """What every flow-level sensor shares: its task and how it waits (Metaflow keeps the same
    defaults in one base class, ``metaflow/plugins/airflow/sensors/base_sensor.py``)."""

    task_id: str
    timeout: float = 3600
    poke_interval: float = 60
    mode: Literal["poke", "reschedule"] = "reschedule"
    exponential_backoff: bool = True
    pool: str | None = None
    soft_fail: bool = False
    doc: str | None = None


class ExternalTaskSensorSpec(SensorSpec):
    """Metaflow's ``@airflow_external_task_sensor``: wait for another DAG (or its tasks)."""

    kind: Literal["external_task"] = "external_task"
    external_dag_id: str
    external_task_ids: tuple[str, ...] | None = None
    allowed_states: tuple[str, ...] = ("success",)
    failed_states: tuple[str, ...] | None = None
    execution_delta_seconds: float | None = None
    check_existence: bool = True


class S3KeySensorSpec(SensorSpec):
    """Metaflow's ``@airflow_s3_key_sensor``: wait for an S3 key."""

    kind: Literal["s3_key"] = "s3_key"
    bucket_key: str | tuple[str, ...]
    bucket_name: str | None = None
    wildcard_match: bool = False
    aws_conn_id: str | None = None
    verify: bool | str | None = None


Sensor = Annotated[Union[ExternalTaskSensorSpec, S3KeySensorSpec], Field(discriminator="kind")]


class FlowTrigger(ManifestModel):
    """Metaflow's ``@trigger_on_finish``: run after a successful run of another flow."""

    kind: Literal["flow"] = "flow"
    flow: Annotated[str, Field(pattern=ASSET_NAME_PATTERN)] = Field(
        description="The upstream flow's project-qualified name (project.branch.Flow, or Flow)."
    )
    asset_uri: str = Field(description="x-metaflow://flows/<flow>: the Asset its end task emits.")

    def describe(self) -> str:
        """One phrase for people (``show``, the DAG's documentation)."""
        return f"a successful run of {self.flow}"

    @model_validator(mode="after")
    def _check_uri(self) -> FlowTrigger:
        if self.asset_uri != flow_asset_uri(self.flow):
            raise ValueError(f"asset_uri must be {flow_asset_uri(self.flow)!r}")
        return self


class EventTrigger(ManifestModel):
    """Metaflow's ``@trigger``: run when an Airflow task emits the event's Asset."""

    kind: Literal["event"] = "event"
    event: Annotated[str, Field(pattern=ASSET_NAME_PATTERN)]
    asset_uri: str = Field(description="x-metaflow://events/<event>: the Asset that triggers.")
    parameters: dict[
        Annotated[str, Field(pattern=PARAMETER_NAME_PATTERN)],
        Annotated[str, Field(pattern=PARAMETER_NAME_PATTERN)],
    ] = Field(
        default={},
        description="Parameter name → field of the event's payload (the asset event's extra).",
    )

    def describe(self) -> str:
        """One phrase for people (``show``, the DAG's documentation)."""
        mapped = ", ".join(f"{name} from {field}" for name, field in self.parameters.items())
        return f"event {self.event}" + (f" ({mapped})" if mapped else "")

    @model_validator(mode="after")
    def _check_uri(self) -> EventTrigger:
        if self.asset_uri != event_asset_uri(self.event):
            raise ValueError(f"asset_uri must be {event_asset_uri(self.event)!r}")
        return self


Trigger = Annotated[Union[FlowTrigger, EventTrigger], Field(discriminator="kind")]
