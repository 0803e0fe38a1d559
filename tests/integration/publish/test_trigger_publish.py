"""@trigger and @trigger_on_finish at publish: the Assets a manifest records, resolved as
Metaflow resolves the decorators (project-qualified flow names, deploy-time values, the
automatic payload mapping), and the refusals that upload nothing."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from metaflow_airflow import ManifestStore
from metaflow_airflow.errors import MetaflowAirflowError
from metaflow_airflow.manifest.events import EventTrigger, FlowTrigger

pytestmark = pytest.mark.timeout(120)


def _flow(
    tmp_path: Path, name: str, decorators: str, parameters: str = "", imports: str = ""
) -> Path:
    """A two-step flow file with the given flow decorators (lines) and Parameters (lines)."""
    lines = [
        "from metaflow import FlowSpec, Parameter, project, schedule, step, trigger",
        "from metaflow import trigger_on_finish, exit_hook",
        imports,
        *decorators.splitlines(),
        f"class {name}(FlowSpec):",
        *(f"    {line.strip()}" for line in parameters.splitlines()),
        "    @step",
        "    def start(self):",
        "        self.next(self.end)",
        "",
        "    @step",
        "    def end(self):",
        "        pass",
        "",
        'if __name__ == "__main__":',
        f"    {name}()",
    ]
    path = tmp_path / f"{name.lower()}.py"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_finish_and_event_triggers_are_recorded(publish, store_url):
    publish("downstream_flow.py")
    publish("event_flow.py")
    store = ManifestStore(store_url)

    downstream = store.read("DownstreamFlow")
    assert downstream.triggers == (
        FlowTrigger(flow="UpstreamFlow", asset_uri="x-metaflow://flows/UpstreamFlow"),
    )
    assert downstream.asset_uri == "x-metaflow://flows/DownstreamFlow"
    assert downstream.schedule is None

    event = store.read("EventFlow")
    assert event.triggers == (
        EventTrigger(
            event="data_ready",
            asset_uri="x-metaflow://events/data_ready",
            parameters={"table": "table_name", "rows": "row_count"},
        ),
    )
    assert event.schedule is not None and event.schedule.cron == "0 0 * * *"


def test_project_qualifies_flow_names_like_metaflow(tmp_path, publish, store_url):
    flow = _flow(
        tmp_path,
        "ProjectDownFlow",
        '@project(name="shop")\n'
        '@trigger_on_finish(flows=["IngestFlow", "other.prod.CleanFlow",'
        ' {"name": "ScoreFlow", "project": "ml", "project_branch": "test.x"}])',
    )
    result = publish(flow, metaflow_options=("--branch=dev",))
    manifest = ManifestStore(store_url).read(result.dag_id)

    assert result.dag_id == "shop.test.dev.ProjectDownFlow"
    # Emitted as the flow's project-qualified name, which upstream @project flows listen for.
    assert manifest.asset_uri == "x-metaflow://flows/shop.test.dev.ProjectDownFlow"
    # A bare name is read in this flow's own project and branch, as Metaflow reads it.
    assert [t.asset_uri for t in manifest.triggers] == [
        "x-metaflow://flows/shop.test.dev.IngestFlow",
        "x-metaflow://flows/other.prod.CleanFlow",
        "x-metaflow://flows/ml.test.x.ScoreFlow",
    ]


def test_deploy_time_event_names_and_automatic_mapping(tmp_path, publish, store_url):
    flow = _flow(
        tmp_path,
        "AutoMapFlow",
        "@trigger(event=namespaced_event_name('orders'))",
        parameters='region = Parameter("region", default="eu")\n'
        'Limit = Parameter("Limit", default=3)',
        imports="from metaflow import namespaced_event_name",
    )
    publish(flow)
    (trigger,) = ManifestStore(store_url).read("AutoMapFlow").triggers
    assert trigger.event == "mfns.orders"
    assert trigger.asset_uri == "x-metaflow://events/mfns.orders"
    # One event without a mapping: Metaflow maps each Parameter from the field of its name.
    assert trigger.parameters == {"Limit": "limit", "region": "region"}


def test_several_events_map_nothing_unless_told(tmp_path, publish, store_url):
    flow = _flow(
        tmp_path,
        "TwoEventsFlow",
        "@trigger(events=['a.b-c', {'name': 'd', 'parameters': ['region', ('n', 'count')]}])",
        parameters='region = Parameter("region", default="eu")\n'
        'n = Parameter("n", default=3)',
    )
    publish(flow)
    triggers = ManifestStore(store_url).read("TwoEventsFlow").triggers
    assert [(t.event, t.parameters) for t in triggers] == [
        ("a.b-c", {}),
        ("d", {"region": "region", "n": "count"}),
    ]


@pytest.mark.parametrize(
    ("decorators", "parameters", "message"),
    [
        ("@trigger(event='bad name')", "", "invalid event name 'bad name'"),
        (
            "@trigger(event={'name': 'e', 'parameters': {'x': 'a.b'}})",
            'x = Parameter("x", default=1)',
            "invalid payload field 'a.b'",
        ),
        (
            "@trigger(event={'name': 'e', 'parameters': {'missing': 'a'}})",
            "",
            "'missing', which is not a Parameter of this flow",
        ),
        (
            "@trigger(events=[{'name': 'e', 'parameters': {'x': 'a'}},"
            " {'name': 'f', 'parameters': {'X': 'b'}}])",
            'x = Parameter("x", default=1)',
            "parameter 'X' is mapped twice",
        ),
        ("@trigger(events=['e', 'e'])", "", "Duplicate event names"),  # Metaflow's own check
        ("@trigger(event='e', options={'reset_at': {'cron': '0 0 * * *'}})", "", "Argo Events"),
        ("@trigger_on_finish(flow='SelfFlow')", "", "is this flow itself"),
        ("@trigger_on_finish(flow='a.b')", "", "Incorrect format for flow"),  # Metaflow's
        (
            "@trigger_on_finish(flow={'name': 'Up', 'project': 'p'})",
            "",
            "names a project without a branch",
        ),
        (
            "@trigger_on_finish(flow='Up')",
            'x = Parameter("x", type=int, required=True)',
            "parameter 'x' has no default",
        ),
        (
            "@schedule(daily=True)",
            'x = Parameter("x", type=int, required=True)',
            "@schedule: parameter 'x' has no default",
        ),
        (
            "@exit_hook(on_success=[print])",
            "",
            "@exit_hook is not supported on Airflow",
        ),
    ],
)
def test_unusable_triggers_are_refused(
    tmp_path, publish, store_url, decorators, parameters, message
):
    flow = _flow(tmp_path, "SelfFlow", decorators, parameters)
    # Metaflow's own checks (in the decorators' flow_init) fail its CLI: a PublishError.
    with pytest.raises(MetaflowAirflowError, match=re.escape(message)):
        publish(flow)
    assert ManifestStore(store_url).list() == []
