"""Runs under load on the production topology: runs of five published flows (linear, branch,
foreach with a two-step body, nested foreach, conditional) triggered together through the REST
API. Every run succeeds, no task is left unfinished, and each Metaflow run's artifacts equal a
local ``python flow.py run`` of the same flow and parameters (differential check).

``make test`` runs one run each of three of them; ``make test-topology`` fifty, ten per flow."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import pytest
from helpers import flow_path

# flow file, its class, and the parameters of run i (as the run's conf)
FLOWS: list[tuple[str, str, Any]] = [
    ("parameters_flow.py", "ParametersFlow", lambda i: {"count": i % 2 + 1, "text": f"r{i % 2}"}),
    ("branch_flow.py", "BranchFlow", lambda i: {}),
    ("foreach_flow.py", "ForeachFlow", lambda i: {"offset": i % 2}),
    ("nested_foreach_flow.py", "NestedForeachFlow", lambda i: {"widths": [1, i % 2 + 1]}),
    ("switch_flow.py", "SwitchFlow", lambda i: {"route": ("small", "large")[i % 2]}),
]
UNFINISHED = {"queued", "scheduled", "running", "up_for_retry", "restarting", "deferred", None}


@dataclass(frozen=True)
class Case:
    flow: str
    flow_name: str
    conf: dict[str, Any]

    def cli(self) -> tuple[str, ...]:
        args: list[str] = []
        for name, value in sorted(self.conf.items()):
            args += [f"--{name}", value if isinstance(value, str) else json.dumps(value)]
        return tuple(args)


def _cases(per_flow: int, flows: list[tuple[str, str, Any]]) -> list[Case]:
    return [Case(f, name, conf(i)) for i in range(per_flow) for f, name, conf in flows]


def _load(stack, published, per_flow: int, flows: list[tuple[str, str, Any]] = FLOWS) -> None:
    dag_ids = {flow: published(flow_path(flow)) for flow, _, _ in flows}
    cases = _cases(per_flow, flows)
    runs = [(case, stack.api.trigger(dag_ids[case.flow], case.conf)) for case in cases]
    distinct = sorted({(c.flow, c.flow_name, c.cli()) for c in cases})
    with ThreadPoolExecutor(2) as pool:  # the local runs meanwhile, two at a time
        local = {
            key: pool.submit(
                lambda c: stack.artifacts(c[1], stack.run_locally(flow_path(c[0]), *c[2])), key
            )
            for key in distinct
        }
        for case, run_id in runs:
            state = stack.api.wait_for_run(dag_ids[case.flow], run_id, timeout=1800)
            assert state == "success", (case, run_id, stack.logs)
            states = {
                (t["task_id"], t["map_index"]): t["state"]
                for t in stack.api.task_instances(dag_ids[case.flow], run_id)
            }
            assert not [k for k, s in states.items() if s in UNFINISHED], (case, states)
        for case, run_id in runs:
            on_airflow = stack.run_artifacts(case.flow_name, dag_ids[case.flow], run_id)
            assert on_airflow == local[(case.flow, case.flow_name, case.cli())].result(), case


@pytest.mark.topology
@pytest.mark.timeout(900)
def test_runs_of_three_shapes_at_once_equal_local_runs(stack, published):
    """``make test``'s share: branch, nested foreach and conditional, one run each."""
    _load(stack, published, per_flow=1, flows=[FLOWS[1], FLOWS[3], FLOWS[4]])


@pytest.mark.topology
@pytest.mark.topology_full
@pytest.mark.timeout(3600)
def test_fifty_runs_at_once_equal_local_runs(stack, published):
    _load(stack, published, per_flow=10)
