"""One conformance check: write the flow of a shape with a behaviour, run it under ``run`` and
on Airflow at the same time, and compare the two runs (a failing behaviour: both runs fail in
the same step, then both are resumed with the fix and the resumed runs are compared)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from airflow_harness import run_dag, run_state
from behaviours import Behaviour
from differential import LocalRun, assert_success_means_end_ran, compare_runs, read_run
from flowgen import flow_name, write_flow
from shapes import Shape

from metaflow_airflow.errors import CompileError, PublishError
from metaflow_airflow.runtime.ids import metaflow_run_id

FIXED = {"CONFORMANCE_FIXED": "1"}
KILLED = "[KILLED BY ORCHESTRATOR]"  # what the local runtime logs into a task it kills


def check_conformance(
    shape: Shape, behaviour: Behaviour, publish: Any, dagbag: Any, store_url: str, folder: Path
) -> None:
    flow_file = write_flow(shape, behaviour, folder)
    name = flow_name(shape, behaviour)
    if shape.loops:
        with pytest.raises((CompileError, PublishError), match="cannot loop"):
            publish(flow_file)
        return

    control = LocalRun.start(flow_file, ["run", *behaviour.cli_args()])
    try:
        publish(flow_file, tags=behaviour.tags)
        bag = dagbag(store_url)
        assert bag.import_errors == {}
        dag_run = run_dag(bag.get_dag(name), run_conf=dict(behaviour.params))
    finally:
        code, control_id, output = control.finish()
    state = run_state(dag_run)
    airflow = read_run(name, metaflow_run_id(dag_run.run_id, name))
    assert_success_means_end_ran(state, airflow)
    assert control_id is not None, output
    control_run = read_run(name, control_id)

    if not behaviour.fails:
        assert code == 0, output
        assert state == "success", f"the DagRun {state}; under run it succeeded"
        differences = compare_runs(control_run, airflow)
        assert not differences, "\n".join(differences)
        return

    assert code != 0 and state == "failed", (code, state)
    _same_failure(shape, control_run, airflow)
    resumed = [
        LocalRun.start(flow_file, ["resume", "--origin-run-id", origin], env=FIXED)
        for origin in (control_id, metaflow_run_id(dag_run.run_id, name))
    ]
    runs = []
    for resume in resumed:
        code, run_id, output = resume.finish()
        assert code == 0 and run_id, output
        runs.append(read_run(name, run_id))
    differences = compare_runs(*runs)
    assert not differences, "resumed runs differ:\n" + "\n".join(differences)


def _same_failure(shape: Shape, control: Any, airflow: Any) -> None:
    """Both runs failed in the probe step and never reached ``end``. The local runtime stops
    launching tasks at the first failure and kills those still running, while Airflow runs every
    task that does not depend on the failed one ("failure" in DOCUMENTED_DIFFERENCES): only the
    tasks both ran to their end are compared."""
    for record in (control, airflow):
        assert not record.successful and "end" not in record.tasks
        probes = [t for key, t in record.tasks.items() if key.split("[")[0] == shape.probe]
        assert probes and not all(t.successful for t in probes)
    killed = {key for key, task in control.tasks.items() if KILLED in task.stdout + task.stderr}
    both = (set(control.tasks) & set(airflow.tasks)) - killed
    control.tasks = {key: control.tasks[key] for key in both}
    airflow.tasks = {key: airflow.tasks[key] for key in both}
    differences = [d for d in compare_runs(control, airflow) if not d.startswith("tasks per")]
    assert not differences, "failed runs differ:\n" + "\n".join(differences)
