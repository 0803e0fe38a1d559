"""Metaflow's Deployer API on a real Airflow: ``Deployer(flow).airflow_manifest().create()``,
``trigger(**params)`` with typed values, the ``TriggeredRun``'s Metaflow run and artifacts,
``terminate()`` of a long run, ``from_deployment`` (dotted @project names too),
``list_deployed_flows`` and ``delete()``."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from helpers import flow_path
from light_stack import Stack

from metaflow_airflow.rest.client import AirflowApi, ApiCredentials
from metaflow_airflow.store.manifest_store import ManifestStore

pytestmark = pytest.mark.timeout(600)


def api_of(stack: Stack) -> AirflowApi:
    return AirflowApi(ApiCredentials(stack.api_url, stack.username, stack.password))


def until(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(1)
    raise AssertionError(f"not within {timeout} s: {what}")


def test_create_trigger_read_terminate_and_delete_through_the_deployer(stack_env: Stack):
    from metaflow import DeployedFlow, Deployer

    deployer = Deployer(str(flow_path("deployer_flow.py")), show_output=False)
    deployed = deployer.airflow_manifest(name="DeployerApiFlow").create(
        compute="local", tags=("team:ml", "deployer")
    )
    assert deployed.name == "DeployerApiFlow"
    manifest = ManifestStore(stack_env.store_url).read("DeployerApiFlow")
    assert manifest.tags == ("deployer", "team:ml")

    triggered = deployed.trigger(count=4, alpha=0.25, label="dep", options={"k": 5})
    run = triggered.wait_for_run(check_interval=1, timeout=180)
    assert triggered.pathspec == f"DeployerFlow/{run.id}" and run.id.startswith("airflow-")
    triggered.wait_for_completion(check_interval=1, timeout=300)
    assert triggered.status == "success"
    assert run.successful and run["work"].task.data.summary == "dep:1.0:5"
    assert "team:ml" in run.tags

    # from the DAG id alone, in another process or notebook
    again = DeployedFlow.from_deployment("DeployerApiFlow", impl="airflow_manifest")
    assert (again.name, again.deployer.flow_name) == ("DeployerApiFlow", "DeployerFlow")
    found = DeployedFlow.get_triggered_airflow_manifest_run("DeployerApiFlow", run.id)
    assert found.status == "success" and found.run.id == run.id
    listed = DeployedFlow.list_deployed_flows(flow_name="DeployerFlow", impl="airflow_manifest")
    assert "DeployerApiFlow" in [d.name for d in listed]

    long = deployed.trigger(sleep_seconds=900)
    long.wait_for_run(check_interval=1, timeout=180)
    with api_of(stack_env) as api:
        until(
            lambda: any(
                t["task_id"] == "work" and t["state"] == "running"
                for t in api.task_instances("DeployerApiFlow", long.airflow_run_id)
            ),
            180,
            "the long step running",
        )
        assert long.terminate() is True
        until(lambda: long.status == "failed", 60, "the run marked failed")
        # its running task is stopped, not left sleeping
        until(
            lambda: (
                not any(
                    t["state"] == "running"
                    for t in api.task_instances("DeployerApiFlow", long.airflow_run_id)
                )
            ),
            90,
            "no task of the terminated run running",
        )
        assert not long.run.finished

        assert deployed.delete() is True
        assert "DeployerApiFlow" not in ManifestStore(stack_env.store_url).list()
        until(lambda: api.dag("DeployerApiFlow") is None, 120, "Airflow forgetting the DAG")


def test_from_deployment_takes_a_dotted_project_name(stack_env: Stack):
    from metaflow import DeployedFlow, Deployer

    deployed = (
        Deployer(
            str(Path(__file__).parent / "kit_flows" / "basic" / "helloproject.py"),
            show_output=False,
            branch="feature1",
        )
        .airflow_manifest()
        .create(compute="local")
    )
    assert deployed.name == "kit_project.test.feature1.HelloProjectFlow"
    again = DeployedFlow.from_deployment(deployed.name, impl="airflow_manifest")
    assert again.deployer.flow_name == "HelloProjectFlow"
    assert again.deployer.top_level_kwargs == {"branch": "feature1"}
    assert again.name == deployed.name
