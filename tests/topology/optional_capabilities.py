"""The kit's optional capabilities that its compliance suite has no test for, through Metaflow's
Deployer API on the production topology (run by test_orchestrator_kit.py beside the suite):

- resume: a run on Airflow fails in its middle step; ``Runner(flow).resume(origin_run_id=...)``
  on this machine reuses the step that finished on Airflow and runs the rest;
- schedule: a flow with ``@schedule`` gets a run that Airflow's scheduler starts by itself.

Prints what it saw as one JSON object. Usage: python optional_capabilities.py RESUME_FLOW
SCHEDULED_FLOW
"""

from __future__ import annotations

import json
import os
import sys
import time
from typing import Any

from metaflow import Deployer, Run, Runner, namespace

from metaflow_airflow.rest.client import AirflowApi, ApiCredentials
from metaflow_airflow.rest.runs import FINISHED_STATES
from metaflow_airflow.runtime.ids import metaflow_run_id
from metaflow_airflow.settings import Settings


def resume(flow_file: str) -> dict[str, Any]:
    os.environ.pop("RESUME_FLOW_FIXED", None)  # the bug is in: the Airflow run fails
    deployer = Deployer(flow_file, show_output=False).airflow_manifest(name="KitResumeFlow")
    deployed = deployer.create(compute="local")
    try:
        triggered = deployed.trigger()
        triggered.wait_for_completion(check_interval=2, timeout=300)
        origin = triggered.run.id
        seen: dict[str, Any] = {"airflow": triggered.status}
        with Runner(flow_file, show_output=False, env={"RESUME_FLOW_FIXED": "1"}) as runner:
            done = runner.resume(origin_run_id=origin)
            namespace(None)
            run = Run(done.run.pathspec)
            seen["resumed"] = {
                "successful": run.successful,
                "start_cloned": run["start"].task.metadata_dict.get("origin-run-id") == origin,
                "report": run["end"].task.data.report,
            }
        return seen
    finally:
        deployed.delete()


def scheduled_run(api: AirflowApi, dag_id: str, timeout: float = 300) -> dict[str, Any]:
    """The first finished run that Airflow's scheduler started (``run_type`` scheduled)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for dag_run in api.dag_runs(dag_id, 10):
            if dag_run.get("run_type") == "scheduled" and dag_run.get("state") in FINISHED_STATES:
                return dag_run
        time.sleep(3)
    raise TimeoutError(f"no scheduled run of {dag_id} finished within {timeout} s")


def main(resume_flow: str, scheduled_flow: str) -> dict[str, Any]:
    # Deployed first: its first scheduled run comes within a minute or two, while resume runs.
    deployed = (
        Deployer(scheduled_flow, show_output=False).airflow_manifest().create(compute="local")
    )
    api = AirflowApi(ApiCredentials.from_settings(Settings.from_environment()))
    try:
        seen = {"resume": resume(resume_flow)}
        api.wait_for_dag(deployed.name, 120)
        dag_run = scheduled_run(api, deployed.name)
        namespace(None)
        run = Run(f"MinutelyFlow/{metaflow_run_id(dag_run['dag_run_id'], deployed.name)}")
        seen["schedule"] = {
            "state": dag_run["state"],
            "successful": run.successful,
            "greeting": run["start"].task.data.greeting,
        }
        return seen
    finally:
        api.set_paused(deployed.name, True)  # no more runs while the DAG leaves
        api.close()
        deployed.delete()


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1], sys.argv[2])))
