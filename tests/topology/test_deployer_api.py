"""Metaflow's Deployer API on the production topology: ``Deployer(flow).airflow_manifest()
.create()``, ``trigger(**params)`` with typed values, the ``TriggeredRun``'s Metaflow run and
artifacts, ``terminate()`` of a long run (its task is stopped), ``from_deployment`` (a dotted
@project name too), ``get_triggered_run``, ``list_deployed_flows`` and ``delete()``."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import pytest
from deploying import run
from helpers import flow_path

pytestmark = [pytest.mark.topology, pytest.mark.timeout(900)]
HERE = Path(__file__).parent


def test_the_deployer_creates_triggers_reads_terminates_and_deletes(stack):
    done = run(stack, [sys.executable, str(HERE / "deployer_scenario.py"),
                       str(flow_path("deployer_flow.py")),
                       str(HERE / "kit_flows" / "basic" / "helloproject.py")])  # fmt: skip
    assert done.returncode == 0, done.stderr[-4000:]
    seen = json.loads(done.stdout.strip().splitlines()[-1])

    assert seen["name"] == "DeployerApiFlow"
    r = seen["run"]
    assert r["id"].startswith("airflow-") and r["pathspec"] == f"DeployerFlow/{r['id']}"
    assert (r["status"], r["successful"], r["summary"]) == ("success", True, "dep:1.0:5")
    assert "team:ml" in r["tags"]
    assert seen["from_deployment"] == ["DeployerApiFlow", "DeployerFlow"]
    assert seen["get_triggered_run"] == ["success", r["id"]]
    assert "DeployerApiFlow" in seen["listed"]

    long = seen["long"]
    # terminated: failed, its Metaflow run unfinished, its running task stopped (the scenario
    # waited until no task instance of the run was running)
    assert seen["terminated"] is True
    assert long == {"status": "failed", "finished": False}

    assert seen["deleted"] is True
    listed = run(stack, [str(Path(sys.executable).parent / "metaflow-airflow"), "list"])
    assert listed.returncode == 0 and "DeployerApiFlow" not in listed.stdout, listed.stderr
    deadline = time.monotonic() + 120
    while stack.api.dag("DeployerApiFlow") is not None:
        assert time.monotonic() < deadline, "Airflow still has the deleted DAG"
        time.sleep(2)

    name = "kit_project.test.feature1.HelloProjectFlow"
    assert seen["project"] == [name, name, "HelloProjectFlow"]
    assert seen["project_options"] == {"branch": "feature1"}
