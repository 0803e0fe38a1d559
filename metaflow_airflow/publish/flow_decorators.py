"""Flow-level decorators → manifest parts: ``@schedule``, the Airflow sensors, ``@trigger``,
``@trigger_on_finish``, and the Asset a flow's successful runs emit. Refuses the flow
decorators Airflow cannot honour."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from metaflow import current
from metaflow.exception import MetaflowException
from pydantic import ValidationError

from metaflow_airflow.errors import CompileError
from metaflow_airflow.manifest.events import (
    ASSET_NAME_PATTERN,
    EventTrigger,
    ExternalTaskSensorSpec,
    FlowTrigger,
    S3KeySensorSpec,
    event_asset_uri,
    flow_asset_uri,
)
from metaflow_airflow.manifest.models import ParameterSpec, ScheduleSpec
from metaflow_airflow.publish.parameters import refuse_required_parameters
from metaflow_airflow.publish.support import UNSUPPORTED_FLOW_DECORATORS


def compile_schedule(flow: Any, parameters: tuple[ParameterSpec, ...]) -> ScheduleSpec | None:
    """``@schedule`` → a five-field cron, converted the way Metaflow's Argo integration does
    (Metaflow states schedules in AWS's six-field form: drop the year, '?' becomes '*')."""
    decos = flow._flow_decorators.get("schedule")
    if not decos or not decos[0].schedule:
        return None
    fields = decos[0].schedule.split()
    if len(fields) not in (5, 6):
        raise CompileError(f"@schedule: {decos[0].schedule!r} is not a 5- or 6-field cron")
    refuse_required_parameters("@schedule", parameters)
    cron = " ".join(fields[:5]).replace("?", "*")
    try:
        return ScheduleSpec(cron=cron, timezone=decos[0].timezone or None)
    except ValidationError as exc:  # what Airflow's timetable would refuse at every parse
        raise CompileError(f"@schedule: {exc.errors()[0]['msg']}") from exc


def compile_sensors(flow: Any) -> tuple[ExternalTaskSensorSpec | S3KeySensorSpec, ...]:
    """Metaflow's flow-level Airflow sensors, in declaration order, named as Metaflow names them."""
    sensors = []
    for name, spec_class in (
        ("airflow_external_task_sensor", ExternalTaskSensorSpec),
        ("airflow_s3_key_sensor", S3KeySensorSpec),
    ):
        for deco in flow._flow_decorators.get(name) or []:
            attributes = {k: v for k, v in deco.attributes.items() if v is not None}
            attributes.pop("name", None)
            description = attributes.pop("description", None)
            delta = attributes.pop("execution_delta", None)
            if delta is not None:
                attributes["execution_delta_seconds"] = delta.total_seconds()
            for key in ("external_task_ids", "allowed_states", "failed_states"):
                if isinstance(attributes.get(key), str):
                    attributes[key] = [attributes[key]]
            sensors.append(
                spec_class(task_id=deco._airflow_task_name, doc=description, **attributes)
            )
    return tuple(sensors)


# What Metaflow's Argo Workflows integration (the one that runs these decorators) accepts.
_EVENT_NAME = re.compile(r"^[A-Za-z0-9_.-]+$")
_PAYLOAD_FIELD = re.compile(r"^[A-Za-z0-9_]+$")


def refuse_unsupported_flow_decorators(flow: Any) -> None:
    for name, reason in UNSUPPORTED_FLOW_DECORATORS.items():
        if flow._flow_decorators.get(name):
            raise CompileError(f"@{name} is not supported on Airflow: {reason}")


def compile_finish_asset(flow: Any) -> str:
    """The Asset this flow's successful runs emit: named by Metaflow's project-qualified flow
    name (``project.branch.Flow`` under ``@project``), as ``@trigger_on_finish`` resolves it."""
    return flow_asset_uri(_checked_asset_name(current.get("project_flow_name") or flow.name))


def compile_triggers(
    flow: Any, parameters: tuple[ParameterSpec, ...]
) -> tuple[FlowTrigger | EventTrigger, ...]:
    """``@trigger`` and ``@trigger_on_finish`` → the Assets the DAG is scheduled on.

    Names resolve as Metaflow's Argo Workflows integration resolves them (deploy-time values
    evaluated, ``@project`` applied to upstream flows, one event without a mapping maps every
    Parameter from the payload field of its name); with several, all must have fired."""
    triggers: list[FlowTrigger | EventTrigger] = []
    triggers.extend(_event_triggers(flow, parameters))
    triggers.extend(_flow_triggers(flow))
    if triggers:
        refuse_required_parameters("@trigger/@trigger_on_finish", parameters)
    uris = [t.asset_uri for t in triggers]
    duplicates = sorted({uri for uri in uris if uris.count(uri) > 1})
    if duplicates:
        raise CompileError(f"@trigger/@trigger_on_finish: {duplicates[0]} is listed twice")
    return tuple(triggers)


def _trigger_decorator(flow: Any, name: str) -> Any | None:
    decos = flow._flow_decorators.get(name)
    if not decos:
        return None
    deco = decos[0]
    if deco.options:
        raise CompileError(
            f"@{name}(options=...) configures Argo Events; it has no meaning on Airflow "
            f"(got {sorted(deco.options)})"
        )
    try:
        deco.format_deploytime_value()
    except MetaflowException as exc:  # a deploy-time function gave an unusable value
        raise CompileError(f"@{name}: {str(exc).strip()}") from exc
    return deco


def _event_triggers(flow: Any, parameters: tuple[ParameterSpec, ...]) -> Iterator[EventTrigger]:
    deco = _trigger_decorator(flow, "trigger")
    if deco is None:
        return
    by_lower_name = {p.name.lower(): p.name for p in parameters}
    mapped: set[str] = set()
    events = []
    for event in deco.triggers:
        name = event["name"]
        if not isinstance(name, str) or not _EVENT_NAME.match(name):
            raise CompileError(
                f"@trigger: invalid event name {name!r}: only letters, digits, '_', '-' and "
                "'.' are allowed"
            )
        mapping = {}
        for parameter, field in (event.get("parameters") or {}).items():
            if not _PAYLOAD_FIELD.match(field):
                raise CompileError(
                    f"@trigger: invalid payload field {field!r} for event {name!r}: only "
                    "letters, digits and '_' are allowed"
                )
            if parameter.lower() not in by_lower_name:
                raise CompileError(
                    f"@trigger: event {name!r} maps the payload field {field!r} to "
                    f"{parameter!r}, which is not a Parameter of this flow"
                )
            if parameter.lower() in mapped:
                raise CompileError(f"@trigger: parameter {parameter!r} is mapped twice")
            mapped.add(parameter.lower())
            mapping[by_lower_name[parameter.lower()]] = field
        events.append((name, mapping))
    if len(events) == 1 and not events[0][1]:  # Metaflow maps each Parameter by its own name
        events = [(events[0][0], {p.name: p.name.lower() for p in parameters})]
    for name, mapping in events:
        yield EventTrigger(event=name, asset_uri=event_asset_uri(name), parameters=mapping)


def _flow_triggers(flow: Any) -> Iterator[FlowTrigger]:
    deco = _trigger_decorator(flow, "trigger_on_finish")
    if deco is None:
        return
    own = current.get("project_flow_name") or flow.name
    for upstream in deco.triggers:
        project = upstream.get("project") or current.get("project_name")
        branch = upstream.get("branch") or current.get("branch_name")
        if bool(project) != bool(branch):
            raise CompileError(
                f"@trigger_on_finish: flow {upstream['flow']!r} names a project without a "
                "branch (or a branch without a project): give both 'project' and "
                "'project_branch', or use @project"
            )
        name = ".".join(v for v in (project, branch, upstream["flow"]) if v)
        if name == own:
            raise CompileError(
                f"@trigger_on_finish: {name!r} is this flow itself; each run would start "
                "the next one forever"
            )
        yield FlowTrigger(flow=_checked_asset_name(name), asset_uri=flow_asset_uri(name))


def _checked_asset_name(name: str) -> str:
    if not re.fullmatch(ASSET_NAME_PATTERN, name):
        raise CompileError(
            f"flow name {name!r} cannot name an Airflow Asset (letters, digits, '_', '.', "
            "'-', '@', '+' only)"
        )
    return name
