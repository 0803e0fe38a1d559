"""Every Metaflow command of a task carries the flow's environment type, top-level options
(``--branch`` of @project) and the scheduler's attempt count: the kit's contract for
``--environment``, ``--branch`` and ``--retry-count`` (runtime/commands.py)."""

from __future__ import annotations

import itertools

from manifests import FOREACH

from metaflow_airflow.runtime.commands import render_step_commands
from metaflow_airflow.runtime.invocation import StepInvocation


def commands_of(step: str, **invocation):
    manifest = FOREACH.model_copy(
        update={
            "metaflow": FOREACH.metaflow.model_copy(
                update={"environment": "conda", "top_level_options": ("--branch", "feature1")}
            )
        }
    )
    spec = manifest.steps_by_name[step]
    fields = {
        "flow_name": "F",
        "step": step,
        "run_id": "airflow-1",
        "task_id": "airflow-2",
        "input_paths": "airflow-1/start/airflow-0",
        "retry_count": 2,
        **invocation,
    }
    return render_step_commands(
        manifest, spec, StepInvocation(**fields), python="python", result_file="/r.json"
    )


def pairs(argv: tuple[str, ...]) -> list[tuple[str, str]]:
    return list(itertools.pairwise(argv))


def test_every_command_of_every_step_has_the_environment_branch_and_attempt():
    start = commands_of("start", parameters_task_id="airflow-2-params", input_paths="")
    body = commands_of("a", split_index=1)
    init, start_step = start.argvs[0], start.argvs[1]
    assert "init" in init
    for argv in (init, start_step, body.argvs[0]):
        assert ("--environment", "conda") in pairs(argv)
        assert ("--branch", "feature1") in pairs(argv)
    for argv in (start_step, body.argvs[0]):
        assert ("--retry-count", "2") in pairs(argv)
    assert ("--split-index", "1") in pairs(body.argvs[0])


def test_the_metadata_service_location_never_comes_from_the_manifest():
    """A manifest published before the rule carried the publisher's service URL: the task
    takes the deployment's (the worker's environment or Metaflow configuration) instead."""
    service = {
        "METAFLOW_SERVICE_URL": "https://laptop.example.com",
        "METAFLOW_SERVICE_INTERNAL_URL": "https://internal.example.com",
        "METAFLOW_SERVICE_HEADERS": '{"x-api-key": "from-the-manifest"}',
    }
    metaflow = FOREACH.metaflow.model_copy(
        update={"metadata": "service", "env": {**FOREACH.metaflow.env, **service}}
    )
    steps = tuple(s.model_copy(update={"env": dict(service)}) for s in FOREACH.steps)
    manifest = FOREACH.model_copy(update={"metaflow": metaflow, "steps": steps})
    invocation = StepInvocation(flow_name="F", step="start", run_id="airflow-1",
                                task_id="airflow-2", input_paths="", retry_count=0)  # fmt: skip
    commands = render_step_commands(
        manifest, manifest.steps_by_name["start"], invocation, python="python", result_file="r"
    )
    assert not set(service) & set(commands.env)
    assert ("--metadata=service",) == tuple(
        a for a in commands.argvs[0] if "--metadata" in a
    )  # the flow's own choice
