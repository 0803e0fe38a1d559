"""Asset triggers through the real scheduler: ``@trigger_on_finish`` fires from a real run of the
upstream flow (its ``end`` task emits the flow's Asset; the scheduler, not a test, starts the
downstream DAG), with the downstream flow published after the upstream one."""

from __future__ import annotations

import time

import pytest
from helpers import flow_path

pytestmark = [pytest.mark.topology, pytest.mark.topology_full, pytest.mark.timeout(600)]


def test_an_upstream_run_starts_the_downstream_flow(stack, published):
    upstream = published(flow_path("upstream_flow.py"))
    downstream = published(flow_path("downstream_flow.py"))  # after the upstream
    run_id = stack.api.trigger(upstream)
    assert stack.api.wait_for_run(upstream, run_id) == "success"

    deadline = time.monotonic() + 180
    while not (runs := stack.api.call("GET", f"/dags/{downstream}/dagRuns")["dag_runs"]):
        assert time.monotonic() < deadline, "the downstream flow never ran"
        time.sleep(1)
    (run,) = runs
    assert run["run_type"] in ("asset_triggered", "dataset_triggered")
    assert stack.api.wait_for_run(downstream, run["dag_run_id"]) == "success"
    artifacts = stack.run_artifacts("DownstreamFlow", downstream, run["dag_run_id"])
    assert artifacts["start"]["factor_seen"] == 2
