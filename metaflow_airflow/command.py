"""The Metaflow command lines of one task, shared by every way of running a step.

Local compute runs these argv lists as processes; Kubernetes compute joins them, shell-quoted,
into the pod's script. Either way values that come from users (parameters) travel in the
environment, and the argv holds only ids, paths and names computed by :mod:`.runtime`.
"""

from __future__ import annotations

from dataclasses import dataclass

from .manifest import FlowManifest, StepSpec
from .runtime import SPLIT_COUNT_KEY, StepInvocation

# Runs after a foreach step: writes its split count where the compute hands it back as XCom.
SPLIT_COUNT_SCRIPT = f"""\
import json, sys
from metaflow import Task, namespace
namespace(None)
with open(sys.argv[2], "w") as out:
    json.dump({{"{SPLIT_COUNT_KEY}": Task(sys.argv[1])["_foreach_num_splits"].data}}, out)
"""


@dataclass(frozen=True)
class StepCommands:
    """Argv lists to run in order in the unpacked code package, and the variables they need."""

    argvs: tuple[tuple[str, ...], ...]
    env: dict[str, str]


def render_step_commands(
    manifest: FlowManifest,
    step: StepSpec,
    invocation: StepInvocation,
    *,
    python: str,
    result_file: str,
) -> StepCommands:
    """``init`` (start only), then ``step``, then, for a foreach, the split-count report."""
    metaflow = manifest.metaflow
    base = (
        python,
        metaflow.flow_file,
        *metaflow.top_level_options,
        "--quiet",
        f"--metadata={metaflow.metadata}",
        f"--environment={metaflow.environment}",
        f"--datastore={metaflow.datastore}",
        f"--datastore-root={metaflow.datastore_root}",
        "--no-pylint",
        *(f"--with={spec}" for spec in step.decorator_specs),
    )
    tags = tuple(arg for tag in manifest.tags for arg in ("--tag", tag))
    argvs = []
    if invocation.parameters_task_id:
        argvs.append(
            (*base, "init", "--run-id", invocation.run_id,
             "--task-id", invocation.parameters_task_id, *tags)
        )
    split = () if invocation.split_index is None else ("--split-index", str(invocation.split_index))
    argvs.append(
        (
            *base, "step", step.name,
            "--run-id", invocation.run_id,
            "--task-id", invocation.task_id,
            "--retry-count", str(invocation.retry_count),
            "--max-user-code-retries", str(step.max_user_code_retries),
            "--input-paths", invocation.input_paths,
            *split, *tags,
        )
    )
    if step.type == "foreach":
        argvs.append((python, "-c", SPLIT_COUNT_SCRIPT, invocation.pathspec, result_file))
    package = manifest.code_package
    env = {
        **metaflow.env,
        **step.env,
        "METAFLOW_USER": metaflow.user,
        "PYTHONUNBUFFERED": "x",
        # Metaflow records these as the task's code package (Task.code, resume).
        "METAFLOW_CODE_URL": package.url,
        "METAFLOW_CODE_SHA": package.sha,
        "METAFLOW_CODE_DS": metaflow.datastore,
        "METAFLOW_CODE_METADATA": package.metadata,
        **invocation.parameter_env,
    }
    return StepCommands(argvs=tuple(argvs), env=env)
