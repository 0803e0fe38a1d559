"""The Metaflow command lines of one task, shared by every way of running a step.

Local compute runs these argv lists as processes; Kubernetes compute joins them, shell-quoted,
into the pod's script. Either way values that come from users (parameters) travel in the
environment, and the argv holds only ids, paths and names computed by :mod:`.invocation`.
"""

from __future__ import annotations

from dataclasses import dataclass

from metaflow_airflow.manifest.models import FlowManifest, StepSpec
from metaflow_airflow.runtime.invocation import NEXT_STEPS_KEY, SPLIT_COUNT_KEY, StepInvocation

# Steps whose outcome decides what Airflow runs next: how many splits, which branch.
REPORTING_STEP_TYPES = ("foreach", "split-switch")

# Runs after such a step: writes its outcome where the compute hands it back as XCom.
RESULT_SCRIPT = f"""\
import json, sys
from metaflow import Task, namespace
namespace(None)
task = Task(sys.argv[1])
if sys.argv[3] == "foreach":
    result = {{"{SPLIT_COUNT_KEY}": task["_foreach_num_splits"].data}}
else:
    result = {{"{NEXT_STEPS_KEY}": list(task["_transition"].data[0])}}
with open(sys.argv[2], "w") as out:
    json.dump(result, out)
"""


# Metaflow's log capture (metaflow.mflog): each stream through its tee into a file, then the
# files saved to the task's datastore, where the Client API and `logs` read them.
MFLOG_TEE = ("-m", "metaflow.mflog.tee", "task")
MFLOG_SAVE = ("-m", "metaflow.mflog.save_logs")


def log_env(manifest: FlowManifest, invocation: StepInvocation, log_dir: str) -> dict[str, str]:
    """Where Metaflow's log capture writes this task's logs and where ``save_logs`` uploads
    them (the attempt's own folder of the task datastore)."""
    return {
        "MF_PATHSPEC": invocation.pathspec,
        "MF_ATTEMPT": str(invocation.retry_count),
        "MF_DATASTORE": manifest.metaflow.datastore,
        "MF_DATASTORE_ROOT": manifest.metaflow.datastore_root,
        "MFLOG_STDOUT": f"{log_dir}/mflog_stdout",
        "MFLOG_STDERR": f"{log_dir}/mflog_stderr",
    }


# Where the Metaflow metadata service is and how to authenticate to it: the deployment's (the
# worker's environment or Metaflow configuration, a pod's secrets), never a manifest's. A
# manifest published before this rule carried the publisher's service URL, which would
# override the deployment's (docs/operations.md, "A Metaflow metadata service").
DEPLOYMENT_SETTINGS = frozenset(
    {"METAFLOW_SERVICE_URL", "METAFLOW_SERVICE_INTERNAL_URL", "METAFLOW_SERVICE_HEADERS"}
)


def _without_deployment_settings(env: dict[str, str]) -> dict[str, str]:
    return {name: value for name, value in env.items() if name not in DEPLOYMENT_SETTINGS}


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
    """``init`` (start only), then ``step``, then, for a foreach or a conditional, the report
    of its outcome into ``result_file``."""
    metaflow = manifest.metaflow
    base = (
        python,
        metaflow.flow_file,
        *metaflow.top_level_options,
        "--quiet",
        f"--metadata={metaflow.metadata}",
        # The environment type (conda, pypi...) reaches every step, start or not.
        "--environment",
        metaflow.environment,
        f"--datastore={metaflow.datastore}",
        f"--datastore-root={metaflow.datastore_root}",
        "--no-pylint",
        *(f"--with={spec}" for spec in step.decorator_specs),
    )
    tags = tuple(arg for tag in manifest.tags for arg in ("--tag", tag))
    argvs = []
    if invocation.parameters_task_id:
        argvs.append(
            (
                *base,
                "init",
                "--run-id",
                invocation.run_id,
                "--task-id",
                invocation.parameters_task_id,
                *tags,
            )
        )
    split = () if invocation.split_index is None else ("--split-index", str(invocation.split_index))
    argvs.append(
        (
            *base,
            "step",
            step.name,
            "--run-id",
            invocation.run_id,
            "--task-id",
            invocation.task_id,
            "--retry-count",
            str(invocation.retry_count),
            "--max-user-code-retries",
            str(step.max_user_code_retries),
            "--input-paths",
            invocation.input_paths,
            *split,
            *tags,
        )
    )
    if step.type in REPORTING_STEP_TYPES:
        argvs.append((python, "-c", RESULT_SCRIPT, invocation.pathspec, result_file, step.type))
    package = manifest.code_package
    env = {
        **_without_deployment_settings(metaflow.env),
        **_without_deployment_settings(step.env),
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
