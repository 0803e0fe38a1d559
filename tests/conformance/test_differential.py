"""The oracle itself, without Airflow: it ignores exactly the documented differences (ids,
namespace, code folder) and reports every other one, and the generated flows are valid
Metaflow graphs under ``run``'s own validation."""

from __future__ import annotations

import copy
import importlib.util

import pytest
from behaviours import BEHAVIOURS
from differential import RunRecord, TaskRecord, _Canon, compare_runs
from flowgen import flow_name, write_flow
from shapes import SHAPES


def _record(run_id: str, task_id: str, namespace: str, folder: str) -> RunRecord:
    canon = _Canon(run_id, {task_id: "<task id of start>"}, [namespace])
    artifacts = {
        "pathspec": f"F/{run_id}/start/{task_id}",
        "task": task_id,
        "namespace": namespace,
        "trace": f'File "{folder}/x_flow.py", line 3, in start; took {task_id[-1]} s',
    }
    task = TaskRecord(True, canon.value(artifacts), "out 7\n", "", [("blank", "notes")])
    return RunRecord(
        f"F/{run_id}", True, ["t"], canon.tags([namespace, "runtime:dev"]), {"start": task}
    )


def test_documented_differences_are_ignored():
    control = _record("1796", "7", "user:tester", "/tmp/pytest/flow")
    airflow = _record(
        "airflow-0123456789ab",
        "airflow-01234567",
        "production:f-0-abcd",
        "/tmp/metaflow-airflow-x1",
    )
    assert compare_runs(control, airflow) == []


@pytest.mark.parametrize(
    "change",
    [
        lambda r: r.tasks["start"].artifacts.update(trace="other"),
        lambda r: r.tasks["start"].artifacts.pop("task"),
        lambda r: setattr(r.tasks["start"], "stdout", ""),
        lambda r: setattr(r.tasks["start"], "successful", False),
        lambda r: setattr(r.tasks["start"], "cards", []),
        lambda r: setattr(r, "successful", False),
        lambda r: setattr(r, "user_tags", []),
        lambda r: r.tasks.update({"end": r.tasks["start"]}),
    ],
    ids=[
        "artifact",
        "missing-artifact",
        "stdout",
        "task-success",
        "cards",
        "run-success",
        "tags",
        "task-count",
    ],
)
def test_every_other_difference_is_reported(change):
    control = _record("1796", "7", "user:tester", "/tmp/pytest/flow")
    airflow = copy.deepcopy(control)
    change(airflow)
    assert len(compare_runs(control, airflow)) >= 1


def test_every_generated_flow_is_a_valid_metaflow_graph(tmp_path):
    """Metaflow's own graph checks (those ``run`` applies first), on every shape: a generator
    bug would otherwise look like an Airflow failure."""
    from metaflow.graph import FlowGraph
    from metaflow.lint import linter

    for shape in SHAPES.values():
        flow = write_flow(shape, BEHAVIOURS["artifacts"], tmp_path)
        spec = importlib.util.spec_from_file_location(flow.stem, flow)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        linter.run_checks(FlowGraph(getattr(module, flow_name(shape, BEHAVIOURS["artifacts"]))))
