"""Flow decorators on real Metaflow flows (``flow_init`` run as Metaflow's CLI runs it):
@schedule's cron, the Airflow sensors, @trigger / @trigger_on_finish, @project names, and the
flow decorators Airflow cannot honour."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from metaflow import (
    FlowSpec,
    Parameter,
    airflow_external_task_sensor,
    airflow_s3_key_sensor,
    exit_hook,
    project,
    schedule,
    trigger,
    trigger_on_finish,
)
from metaflow_start import TwoSteps, fresh_metaflow_state, start_flow  # noqa: F401 (a fixture)

from metaflow_airflow.errors import CompileError
from metaflow_airflow.manifest.events import (
    EventTrigger,
    ExternalTaskSensorSpec,
    FlowTrigger,
    S3KeySensorSpec,
)
from metaflow_airflow.manifest.models import ScheduleSpec
from metaflow_airflow.publish.flow_decorators import (
    compile_finish_asset,
    compile_schedule,
    compile_sensors,
    compile_triggers,
    refuse_unsupported_flow_decorators,
)
from metaflow_airflow.publish.parameters import compile_parameters

pytestmark = pytest.mark.usefixtures("fresh_metaflow_state")


def flow_with(*decorators: Any, parameters: dict[str, Parameter] | None = None) -> type[FlowSpec]:
    """A new flow class (named Flow) with these flow decorators, outermost first."""
    flow_cls: type[FlowSpec] = type("Flow", (TwoSteps,), dict(parameters or {}))
    for decorator in reversed(decorators):
        flow_cls = decorator(flow_cls)
    return flow_cls


def scheduled(*decorators: Any, **parameters: Parameter) -> ScheduleSpec | None:
    flow = start_flow(flow_with(*decorators, parameters=parameters)).flow
    return compile_schedule(flow, compile_parameters(flow))


def triggers(
    *decorators: Any, options: dict[str, Any] | None = None, **parameters: Parameter
) -> tuple[FlowTrigger | EventTrigger, ...]:
    flow = start_flow(flow_with(*decorators, parameters=parameters), options=options).flow
    return compile_triggers(flow, compile_parameters(flow))


# @schedule ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("decorator", "cron"),
    [
        (schedule(cron="0 12 ? * MON-FRI *"), "0 12 * * MON-FRI"),  # AWS form: no year, no '?'
        (schedule(cron="*/15 6-18 * * *"), "*/15 6-18 * * *"),
        (schedule(hourly=True), "0 * * * *"),
        (schedule, "0 0 * * *"),  # daily is @schedule's default
        (schedule(weekly=True), "0 0 * * SUN"),
    ],
    ids=["six-field", "five-field", "hourly", "daily", "weekly"],
)
def test_schedule_becomes_a_five_field_cron(decorator: Any, cron: str) -> None:
    assert scheduled(decorator) == ScheduleSpec(cron=cron)


def test_schedule_keeps_its_timezone() -> None:
    spec = scheduled(schedule(cron="30 7 * * *", timezone="Europe/Paris"))
    assert spec == ScheduleSpec(cron="30 7 * * *", timezone="Europe/Paris")


def test_no_schedule() -> None:
    assert scheduled() is None
    assert scheduled(schedule(daily=False)) is None


def test_a_cron_of_another_length_is_refused() -> None:
    with pytest.raises(CompileError, match="'0 12 \\* \\*' is not a 5- or 6-field cron"):
        scheduled(schedule(cron="0 12 * *"))


@pytest.mark.parametrize(
    ("decorator", "message"),
    [
        (schedule(cron="0 25 * * ? *"), "25 is out of range for field 2"),
        (schedule(cron="*/0 * * * *"), "step '0' of field 1"),
        (schedule(cron="0 0 * * *", timezone="Not/AZone"), "unknown time zone 'Not/AZone'"),
    ],
)
def test_a_schedule_airflow_would_refuse_is_refused_at_publish(decorator: Any, message: str):
    """Published, Airflow's timetable check would fail the loader file at every parse."""
    with pytest.raises(CompileError, match=f"@schedule: .*{message}"):
        scheduled(decorator)


def test_a_scheduled_flow_needs_defaults_for_every_parameter() -> None:
    with pytest.raises(CompileError, match="@schedule: parameter 'text' has no default"):
        scheduled(schedule(hourly=True), text=Parameter("text", required=True))


# Sensors -----------------------------------------------------------------------------------


def test_external_task_sensor_fields() -> None:
    flow = start_flow(
        flow_with(
            airflow_external_task_sensor(
                name="wait_upstream",
                description="The nightly load.",
                external_dag_id="nightly_load",
                external_task_ids="publish",
                allowed_states=["success", "skipped"],
                failed_states=["failed"],
                execution_delta=timedelta(hours=1, minutes=30),
                timeout=600,
                poke_interval=30,
                mode="poke",
                soft_fail=True,
            )
        )
    ).flow
    assert compile_sensors(flow) == (
        ExternalTaskSensorSpec(
            task_id="wait_upstream",
            doc="The nightly load.",
            external_dag_id="nightly_load",
            external_task_ids=("publish",),
            allowed_states=("success", "skipped"),
            failed_states=("failed",),
            execution_delta_seconds=5400,
            timeout=600,
            poke_interval=30,
            mode="poke",
            soft_fail=True,
        ),
    )


def test_s3_key_sensor_fields() -> None:
    flow = start_flow(
        flow_with(
            airflow_s3_key_sensor(
                name="wait_files",
                bucket_key=["data/a.csv", "data/b.csv"],
                bucket_name="landing",
                wildcard_match=True,
                aws_conn_id="aws_landing",
            )
        )
    ).flow
    (sensor,) = compile_sensors(flow)
    assert sensor == S3KeySensorSpec(
        task_id="wait_files",
        bucket_key=("data/a.csv", "data/b.csv"),
        bucket_name="landing",
        wildcard_match=True,
        aws_conn_id="aws_landing",
    )
    assert (sensor.mode, sensor.timeout, sensor.doc) == ("reschedule", 3600, None)


def test_unnamed_sensors_get_metaflows_task_names() -> None:
    """Named as Metaflow's own Airflow integration names them (type and a hash of its index)."""
    flow = start_flow(
        flow_with(
            airflow_s3_key_sensor(bucket_key="s3://landing/a"),
            airflow_s3_key_sensor(bucket_key="s3://landing/b"),
            airflow_external_task_sensor(external_dag_id="other"),
        )
    ).flow
    sensors = compile_sensors(flow)
    metaflow_names = {
        d._airflow_task_name
        for name in ("airflow_s3_key_sensor", "airflow_external_task_sensor")
        for d in flow._flow_decorators[name]
    }
    assert {s.task_id for s in sensors} == metaflow_names and len(metaflow_names) == 3
    keys = {s.bucket_key: s.task_id for s in sensors if isinstance(s, S3KeySensorSpec)}
    assert all(task_id.startswith("S3KeySensor-") for task_id in keys.values())


# @trigger ----------------------------------------------------------------------------------


def test_one_event_maps_every_parameter_by_its_lowercase_name() -> None:
    assert triggers(
        trigger(event="orders.ready"),
        region=Parameter("Region", default="eu"),
        limit=Parameter("limit", default=3),
    ) == (
        EventTrigger(
            event="orders.ready",
            asset_uri="x-metaflow://events/orders.ready",
            parameters={"Region": "region", "limit": "limit"},
        ),
    )


def test_explicit_mappings_match_parameter_names_case_insensitively() -> None:
    (first, second) = triggers(
        trigger(
            events=[
                {"name": "a", "parameters": {"REGION": "area"}},
                {"name": "b", "parameters": ["limit"]},
            ]
        ),
        region=Parameter("region", default="eu"),
        limit=Parameter("limit", default=3),
    )
    assert (first.event, first.parameters) == ("a", {"region": "area"})
    assert (second.event, second.parameters) == ("b", {"limit": "limit"})


def test_several_events_map_nothing_unless_told() -> None:
    found = triggers(trigger(events=["a", "b"]), limit=Parameter("limit", default=3))
    assert [(t.event, t.parameters) for t in found] == [("a", {}), ("b", {})]


def test_deploy_time_event_name() -> None:
    (event,) = triggers(trigger(event={"name": lambda ctx: f"{ctx.flow_name}.go"}))
    assert event.event == "Flow.go" and event.asset_uri == "x-metaflow://events/Flow.go"


@pytest.mark.parametrize(
    ("decorator", "message"),
    [
        (
            trigger(event="bad name"),
            "@trigger: invalid event name 'bad name': only letters, digits, '_', '-' and '.'",
        ),
        (
            trigger(event={"name": "e", "parameters": {"limit": "a.b"}}),
            "@trigger: invalid payload field 'a.b' for event 'e': only letters, digits and '_'",
        ),
        (
            trigger(event={"name": "e", "parameters": {"missing": "a"}}),
            (
                "@trigger: event 'e' maps the payload field 'a' to 'missing', which is not a "
                "Parameter of this flow"
            ),
        ),
        (
            trigger(
                events=[
                    {"name": "e", "parameters": {"limit": "a"}},
                    {"name": "f", "parameters": {"LIMIT": "b"}},
                ]
            ),
            "@trigger: parameter 'LIMIT' is mapped twice",
        ),
        (
            trigger(event="e", options={"reset_at": {"cron": "0 0 * * *"}}),
            (
                "@trigger(options=...) configures Argo Events; it has no meaning on Airflow "
                "(got ['reset_at'])"
            ),
        ),
        (
            trigger(event={"name": lambda ctx: 1 / 0}),  # a deploy-time name that fails
            "@trigger: When evaluating the field *None* for the Parameter *event_name*",
        ),
    ],
    ids=[
        "event-name",
        "payload-field",
        "unknown-parameter",
        "mapped-twice",
        "options",
        "deploy-time",
    ],
)
def test_event_trigger_refusals(decorator: Any, message: str) -> None:
    with pytest.raises(CompileError) as refused:
        triggers(decorator, limit=Parameter("limit", default=3))
    assert str(refused.value).startswith(message)


def test_a_triggered_flow_needs_defaults_for_every_parameter() -> None:
    with pytest.raises(CompileError, match="@trigger/@trigger_on_finish: parameter 'text'"):
        triggers(trigger(event="e"), text=Parameter("text", required=True))


# @trigger_on_finish and @project -----------------------------------------------------------


def test_upstream_flows_without_project() -> None:
    assert triggers(trigger_on_finish(flows=["IngestFlow", "other.prod.CleanFlow"])) == (
        FlowTrigger(flow="IngestFlow", asset_uri="x-metaflow://flows/IngestFlow"),
        FlowTrigger(
            flow="other.prod.CleanFlow", asset_uri="x-metaflow://flows/other.prod.CleanFlow"
        ),
    )


def test_upstream_flows_are_read_in_this_flows_project() -> None:
    found = triggers(
        project(name="shop"),
        trigger_on_finish(
            flows=[
                "IngestFlow",
                "other.prod.CleanFlow",
                {"name": "ScoreFlow", "project": "ml", "project_branch": "test.x"},
            ]
        ),
        options={"branch": "dev"},
    )
    assert [t.flow for t in found] == [
        "shop.test.dev.IngestFlow",
        "other.prod.CleanFlow",
        "ml.test.x.ScoreFlow",
    ]


def test_a_project_without_a_branch_is_refused() -> None:
    with pytest.raises(CompileError, match="flow 'Up' names a project without a branch"):
        triggers(trigger_on_finish(flow={"name": "Up", "project": "p"}))


@pytest.mark.parametrize(
    ("decorators", "options"),
    [
        ((trigger_on_finish(flow="Flow"),), None),
        ((project(name="shop"), trigger_on_finish(flow="Flow")), {"branch": "dev"}),
    ],
    ids=["flow", "project"],
)
def test_a_flow_cannot_trigger_on_its_own_finish(decorators: Any, options: Any) -> None:
    with pytest.raises(CompileError, match="is this flow itself"):
        triggers(*decorators, options=options)


def test_the_same_upstream_twice_is_refused() -> None:
    """A bare name and its qualified form are the same flow under @project."""
    with pytest.raises(CompileError, match="x-metaflow://flows/shop.prod.Up is listed twice"):
        triggers(
            project(name="shop"),
            trigger_on_finish(flows=["Up", "shop.prod.Up"]),
            options={"production": True},
        )


@pytest.mark.parametrize(
    ("decorators", "options", "uri"),
    [
        ((), None, "x-metaflow://flows/Flow"),
        ((project(name="shop"),), None, "x-metaflow://flows/shop.user.tester.Flow"),
        ((project(name="shop"),), {"branch": "dev"}, "x-metaflow://flows/shop.test.dev.Flow"),
        ((project(name="shop"),), {"production": True}, "x-metaflow://flows/shop.prod.Flow"),
    ],
    ids=["flow", "user-branch", "branch", "production"],
)
def test_finish_asset_is_the_project_qualified_flow_name(
    decorators: Any, options: Any, uri: str
) -> None:
    assert compile_finish_asset(start_flow(flow_with(*decorators), options=options).flow) == uri


# Refused flow decorators -------------------------------------------------------------------


def test_exit_hook_is_refused() -> None:
    flow = start_flow(flow_with(exit_hook(on_success=["notify"]))).flow
    with pytest.raises(CompileError, match="@exit_hook is not supported on Airflow"):
        refuse_unsupported_flow_decorators(flow)
    refuse_unsupported_flow_decorators(start_flow(flow_with(schedule)).flow)
