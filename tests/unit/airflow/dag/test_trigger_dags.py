"""@trigger / @trigger_on_finish on the Airflow side: the DAG's asset schedule, the Asset the
end task emits, and event payload fields mapped to Parameters."""

from __future__ import annotations

import json

import pytest
from airflow_harness import serialize_dag
from manifests import FOREACH_STEPS, make_manifest
from pydantic import ValidationError

from metaflow_airflow.airflow.dag.factory import build_dag
from metaflow_airflow.cli.show import summary
from metaflow_airflow.manifest.events import EventTrigger, FlowTrigger
from metaflow_airflow.manifest.models import FlowManifest, ParameterSpec, ProjectSpec, ScheduleSpec
from metaflow_airflow.runtime.invocation import event_parameter_values

pytestmark = pytest.mark.usefixtures("airflow_db")

PARAMETERS = (
    ParameterSpec(name="n", type="int", default=3),
    ParameterSpec(name="table", type="str", default="none"),
)
UPSTREAM = FlowTrigger(flow="Up", asset_uri="x-metaflow://flows/Up")
DATA_READY = EventTrigger(
    event="data_ready",
    asset_uri="x-metaflow://events/data_ready",
    parameters={"table": "table_name", "n": "rows"},
)


def _manifest(*triggers, schedule=None, kubernetes=False, **changes) -> FlowManifest:
    base = make_manifest(FOREACH_STEPS, PARAMETERS, kubernetes=kubernetes)
    data = {**base.model_dump(), "triggers": triggers, "schedule": schedule, **changes}
    # Through JSON, as the loader reads it: the discriminated union must round-trip.
    return FlowManifest.model_validate_json(FlowManifest.model_validate(data).to_json())


def _condition(timetable):
    """The asset condition of an asset-triggered timetable (a dataset one on Airflow 2)."""
    return getattr(timetable, "asset_condition", None) or timetable.dataset_condition


def _uris(condition) -> list[str]:
    return [asset.uri for asset in condition.objects]


def test_triggers_schedule_the_dag_on_all_their_assets():
    dag = build_dag(_manifest(UPSTREAM, DATA_READY))
    condition = _condition(dag.timetable)
    assert type(condition).__name__ in ("AssetAll", "DatasetAll")  # every one must fire
    assert _uris(condition) == ["x-metaflow://flows/Up", "x-metaflow://events/data_ready"]
    assert not hasattr(dag.timetable, "timetable")  # no time-based part


def test_schedule_and_triggers_combine_into_asset_or_time():
    dag = build_dag(_manifest(UPSTREAM, schedule=ScheduleSpec(cron="30 6 * * *")))
    assert type(dag.timetable).__name__ in ("AssetOrTimeSchedule", "DatasetOrTimeSchedule")
    assert _uris(_condition(dag.timetable)) == ["x-metaflow://flows/Up"]
    assert type(dag.timetable.timetable).__name__ == "CronTriggerTimetable"
    assert dag.timetable.timetable._expression == "30 6 * * *"


def test_without_triggers_the_schedule_is_unchanged():
    assert type(build_dag(_manifest()).timetable).__name__ in ("NullTimetable", "OnceTimetable")
    dag = build_dag(_manifest(schedule=ScheduleSpec(cron="0 1 * * *")))
    assert type(dag.timetable).__name__ == "CronTriggerTimetable"


@pytest.mark.parametrize("kubernetes", [False, True], ids=["local", "kubernetes"])
def test_the_end_task_emits_the_flows_asset(kubernetes):
    dag = build_dag(_manifest(DATA_READY, kubernetes=kubernetes))
    assert [asset.uri for asset in dag.get_task("end").outlets] == ["x-metaflow://flows/F"]
    assert all(not dag.get_task(t).outlets for t in dag.task_ids if t != "end")


def test_project_flows_emit_their_project_qualified_name():
    project = ProjectSpec(name="shop", branch="user.tester")
    assert _manifest(project=project).finish_asset_uri == "x-metaflow://flows/shop.user.tester.F"
    # What publish records wins over the derivation (manifests written before the field lack it).
    published = _manifest(project=project, asset_uri="x-metaflow://flows/shop.prod.F")
    dag = build_dag(published)
    assert [asset.uri for asset in dag.get_task("end").outlets] == ["x-metaflow://flows/shop.prod.F"]


def test_dag_with_triggers_serializes_deterministically():
    manifest = _manifest(UPSTREAM, DATA_READY, schedule=ScheduleSpec(cron="0 1 * * *"))
    first = json.dumps(serialize_dag(build_dag(manifest)), sort_keys=True, default=str)
    assert first == json.dumps(serialize_dag(build_dag(manifest)), sort_keys=True, default=str)
    assert "x-metaflow://events/data_ready" in first


@pytest.mark.parametrize(
    ("trigger", "message"),
    [
        ({"kind": "flow", "flow": "Up", "asset_uri": "x-metaflow://flows/Other"}, "asset_uri must"),
        ({"kind": "event", "event": "e", "asset_uri": "s3://b/k"}, "asset_uri must"),
        ({"kind": "event", "event": "a b", "asset_uri": "x-metaflow://events/a b"}, "pattern"),
        (
            {"kind": "event", "event": "e", "asset_uri": "x-metaflow://events/e",
             "parameters": {"nope": "x"}},
            "maps unknown parameter 'nope'",
        ),
        ({"kind": "timer", "asset_uri": "x-metaflow://flows/Up"}, "does not match any"),
    ],
)
def test_manifest_refuses_inconsistent_triggers(trigger, message):
    data = make_manifest(FOREACH_STEPS, PARAMETERS).model_dump()
    with pytest.raises(ValidationError, match=message):
        FlowManifest.model_validate({**data, "triggers": [trigger]})


def test_asset_uri_must_use_the_flow_scheme():
    data = make_manifest(FOREACH_STEPS, PARAMETERS).model_dump()
    with pytest.raises(ValidationError, match="pattern"):
        FlowManifest.model_validate({**data, "asset_uri": "s3://bucket/anything"})


class TestEventParameterValues:
    manifest = _manifest(UPSTREAM, DATA_READY)

    def test_mapped_fields_of_the_newest_event(self):
        payloads = {
            "x-metaflow://events/data_ready": [
                {"table_name": "old", "rows": 1},
                {"table_name": "sales", "rows": 42, "other": "ignored"},
            ],
            "x-metaflow://flows/Up": [{"table_name": "not mapped from this asset"}],
        }
        assert event_parameter_values(self.manifest, payloads, {}) == {"table": "sales", "n": 42}

    def test_missing_fields_leave_the_default(self):
        payloads = {"x-metaflow://events/data_ready": [{"rows": 5}]}
        assert event_parameter_values(self.manifest, payloads, {}) == {"n": 5}

    def test_conf_wins(self):
        payloads = {"x-metaflow://events/data_ready": [{"table_name": "sales", "rows": 5}]}
        values = event_parameter_values(self.manifest, payloads, {"table": "from conf"})
        assert values == {"n": 5}

    def test_runs_not_triggered_by_the_event_take_nothing(self):
        assert event_parameter_values(self.manifest, {}, {}) == {}
        payloads = {"x-metaflow://flows/Up": [{"rows": 9}]}
        assert event_parameter_values(self.manifest, payloads, {}) == {}


def test_the_dags_documentation_and_show_name_the_triggers():
    manifest = _manifest(UPSTREAM, DATA_READY)
    expected = (
        "a successful run of Up and event data_ready (n from rows, table from table_name) "
        "(all of them, since the last run)"
    )
    assert f"| Triggered by | {expected} |" in build_dag(manifest).doc_md
    assert f"triggers:  {expected}" in summary(manifest, "file:///store/F.json")
    assert "triggers:  a successful run of Up" in summary(_manifest(UPSTREAM), "u")
    assert "Triggered by" not in build_dag(_manifest()).doc_md
    assert "triggers:  -" in summary(_manifest(), "u")
