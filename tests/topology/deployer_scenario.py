"""Metaflow's Deployer driven as a notebook or a program would, against the topology: run by
test_deployer_api.py in a process of its own with the stack's Metaflow configuration (the test
process's Metaflow read another one at import); prints what it saw as one JSON object.

Usage: python deployer_scenario.py FLOW_FILE PROJECT_FLOW_FILE
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any

from metaflow import DeployedFlow, Deployer

from metaflow_airflow.rest.client import AirflowApi, ApiCredentials
from metaflow_airflow.settings import Settings


def until(predicate: Any, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(1)
    raise TimeoutError(f"not within {timeout} s: {what}")


def main(flow_file: str, project_flow_file: str) -> dict[str, Any]:
    seen: dict[str, Any] = {}
    deployed = (
        Deployer(flow_file, show_output=False)
        .airflow_manifest(name="DeployerApiFlow")
        .create(compute="local", tags=("team:ml", "deployer"))
    )
    seen["name"] = deployed.name

    triggered = deployed.trigger(count=4, alpha=0.25, label="dep", options={"k": 5})
    run = triggered.wait_for_run(check_interval=1, timeout=300)
    triggered.wait_for_completion(check_interval=1, timeout=300)
    seen["run"] = {
        "id": run.id,
        "pathspec": triggered.pathspec,
        "status": triggered.status,
        "successful": run.successful,
        "summary": run["work"].task.data.summary,
        "tags": sorted(run.tags),
    }

    again = DeployedFlow.from_deployment("DeployerApiFlow", impl="airflow_manifest")
    seen["from_deployment"] = [again.name, again.deployer.flow_name]
    found = DeployedFlow.get_triggered_airflow_manifest_run("DeployerApiFlow", run.id)
    seen["get_triggered_run"] = [found.status, found.run.id]
    listed = DeployedFlow.list_deployed_flows(flow_name="DeployerFlow", impl="airflow_manifest")
    seen["listed"] = [d.name for d in listed]

    long = deployed.trigger(sleep_seconds=900)
    long_run = long.wait_for_run(check_interval=1, timeout=300)
    until(lambda: "work" in long_run, 300, "the long step started")
    seen["terminated"] = long.terminate()
    until(lambda: long.status == "failed", 120, "the run marked failed")
    with AirflowApi(ApiCredentials.from_settings(Settings.from_environment())) as api:
        # its task is stopped, not left sleeping: no task instance of the run stays running
        until(
            lambda: (
                not any(
                    t["state"] == "running"
                    for t in api.task_instances(deployed.name, long.airflow_run_id)
                )
            ),
            120,
            "no task of the terminated run running",
        )
    seen["long"] = {"status": long.status, "finished": long_run.finished}
    seen["deleted"] = deployed.delete()

    project = (
        Deployer(project_flow_file, show_output=False, branch="feature1")
        .airflow_manifest()
        .create(compute="local")
    )
    again = DeployedFlow.from_deployment(project.name, impl="airflow_manifest")
    seen["project"] = [project.name, again.name, again.deployer.flow_name]
    seen["project_options"] = again.deployer.top_level_kwargs
    return seen


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1], sys.argv[2])))
