"""The hand-written counterpart of a published flow's DAG, for ``benchmarks/topology.py``: one
BashOperator per step running the very command lines the loader's local compute runs
(:func:`~metaflow_airflow.runtime.commands.render_step_commands`, shell-quoted, with Metaflow's
own bash log capture, ``metaflow.mflog.bash_capture_logs``, then ``save_logs``), foreach bodies
as mapped task groups, a nested foreach's split lists flattened by one small task, a conditional
as a branching BashOperator: what someone writes by hand who knows the flow.

The file written is plain Airflow (no import of metaflow-airflow): ids and input paths are Jinja
macros defined in the file; the code package is unpacked once beforehand into ``code_root``.
"""

from __future__ import annotations

import inspect
import shlex
from pathlib import Path

from metaflow.mflog import bash_capture_logs

from metaflow_airflow.airflow.dag.factory import task_arguments
from metaflow_airflow.manifest.models import FlowManifest, StepSpec
from metaflow_airflow.runtime.commands import REPORTING_STEP_TYPES, log_env, render_step_commands
from metaflow_airflow.runtime.ids import PARAMETERS_STEP, join_input_paths
from metaflow_airflow.runtime.invocation import (
    START_STEP,
    StepInvocation,
    encode_parameter,
    meets_branches,
)

# Stand-ins rendered into the argv, replaced by Jinja expressions in the written file.
_RUN, _TASK, _INPUTS, _RESULT = "@@RUN@@", "@@TASK@@", "@@INPUTS@@", "@@RESULT@@"
_RETRY, _SPLIT = 987650001, 987650002

HEADER = '''\
"""By hand: {flow_name} as BashOperators (written by benchmarks/topology.py)."""

import hashlib
import json
from collections.abc import Sequence
from datetime import datetime

try:
    from airflow.sdk import DAG, task_group
    from airflow.providers.standard.operators.bash import BashOperator
    from airflow.providers.standard.operators.branch import BranchMixIn
    from airflow.providers.standard.operators.python import PythonOperator
except ImportError:  # Airflow 2
    from airflow import DAG
    from airflow.decorators import task_group
    from airflow.operators.bash import BashOperator
    from airflow.operators.branch import BranchMixIn
    from airflow.operators.python import PythonOperator

DAG_ID = {dag_id!r}
FLOW = {flow_name!r}


def _hashed(parts, length):
    return "airflow-" + hashlib.md5("-".join(map(str, parts)).encode()).hexdigest()[:length]


def rid(run_id):
    return _hashed([run_id, DAG_ID], 12)


def tid(run_id, step, index):
    return _hashed([run_id, step, DAG_ID, index], 8)


def path(run_id, step, index):
    return f"{{rid(run_id)}}/{{step}}/{{tid(run_id, step, index)}}"


{join_input_paths}

def ran(run_id, ti, parents):
    """The input paths of the parents that ran (each pushed its task id)."""
    return join_input_paths(
        [path(run_id, s, i) for s, i in parents if ti.xcom_pull(task_ids=s) is not None]
    )


def joined(run_id, body_end, splits, my_index):
    """A foreach join's inputs: the body's last task of each split made by my foreach task."""
    return join_input_paths(
        [path(run_id, body_end, k) for k, s in enumerate(splits) if int(s["MF_PARENT"]) == my_index]
    )


def split_of(ti, source):
    return ti.xcom_pull(task_ids=source)[ti.map_index]


{encode_parameter}

def splits(output):
    """A foreach step's report: one environment per split."""
    count = json.loads(output)["foreach_num_splits"]
    return [{{"MF_PARENT": "-1", "MF_SPLIT": str(i)}} for i in range(count)]


def split_counts(output):
    """A mapped foreach step's report: its split indexes (flattened by its splits task)."""
    return list(range(json.loads(output)["foreach_num_splits"]))


def next_steps(output):
    return json.loads(output)["next_steps"]


def flatten(foreach):
    def collect(ti):
        lists = ti.xcom_pull(task_ids=foreach) or []
        return [{{"MF_PARENT": str(p), "MF_SPLIT": str(s)}}
                for p, found in enumerate(lists) for s in found or ()]
    return collect


class BashBranchOperator(BashOperator, BranchMixIn):
    """A conditional step: runs its command, then skips the branches not taken."""

    def execute(self, context):
        return self.do_branch(context, super().execute(context))


T = {{}}
with DAG(
    DAG_ID,
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    params={params!r},
    user_defined_macros={{"rid": rid, "tid": tid, "path": path, "ran": ran, "joined": joined,
                          "split_of": split_of, "enc": encode_parameter}},
    tags=["by-hand"],
) as dag:
'''


def write_dag(
    manifest: FlowManifest, dag_id: str, code_root: str, python: str, folder: Path
) -> Path:
    """Write the hand-written DAG of ``manifest`` as ``folder/<dag_id>.py``; returns its path."""
    for step in manifest.steps:
        if step.joins_foreach and len(step.parents) > 1:
            raise NotImplementedError(f"{step.name}: a foreach body ending in several steps")
    params = {p.name: p.default for p in manifest.parameters}
    lines = [
        HEADER.format(
            flow_name=manifest.flow_name,
            dag_id=dag_id,
            params=params,
            join_input_paths=inspect.getsource(join_input_paths),
            encode_parameter=_standalone_encode(),
        )
    ]
    for step in manifest.steps:
        if step.foreach is None:
            lines += _task(manifest, step, code_root, python, indent=4, mapped=False)
    for foreach in manifest.steps:
        if foreach.type != "foreach":
            continue
        source = foreach.name
        if foreach.foreach is not None:  # mapped: flatten its tasks' split lists first
            source = f"{foreach.name}__splits"
            lines += [
                (
                    f"    T[{source!r}] = PythonOperator(task_id={source!r}, "
                    f"python_callable=flatten({foreach.name!r}))"
                ),
                f"    T[{foreach.name!r}] >> T[{source!r}]",
            ]
        group = f"{foreach.name}_foreach"
        lines.append(f"    @task_group(group_id={group!r}, prefix_group_id=False)")
        lines.append(f"    def {group}(env):")
        for step in manifest.steps:
            if step.foreach == foreach.name:
                lines += _task(manifest, step, code_root, python, indent=8, mapped=True)
        lines.append(f"    {group}.expand(env=T[{source!r}].output)")
    for step in manifest.steps:
        for parent in step.parents:
            lines.append(f"    T[{parent!r}] >> T[{step.name!r}]")
    target = folder / f"{dag_id}.py"
    target.write_text("\n".join(lines) + "\n")
    return target


def _standalone_encode() -> str:
    """``encode_parameter`` with its spec argument replaced by the type name."""
    source = inspect.getsource(encode_parameter)
    source = source.replace("spec: ParameterSpec", "kind").replace("spec.type", "kind")
    return source.replace("value: Any) -> str:", "value):")


def _task(
    manifest: FlowManifest,
    step: StepSpec,
    code_root: str,
    python: str,
    *,
    indent: int,
    mapped: bool,
) -> list[str]:
    """The lines of one step's operator."""
    pad = " " * indent
    operator = "BashBranchOperator" if step.type == "split-switch" else "BashOperator"
    arguments = {
        "task_id": repr(step.name),
        "bash_command": repr(_script(manifest, step, code_root, python)),
        "retries": repr(step.retries),
        "trigger_rule": repr(task_arguments(manifest, step)["trigger_rule"]),
        "append_env": "True",
    }
    if mapped:
        arguments["env"] = "env"
    elif step.name == START_STEP and manifest.parameters:
        arguments["env"] = repr(
            {
                p.env_var: f"{{{{ enc({p.type!r}, params[{p.name!r}]) }}}}"
                for p in manifest.parameters
            }
        )
    if step.type == "foreach":
        arguments["output_processor"] = "split_counts" if step.foreach else "splits"
    elif step.type == "split-switch":
        arguments["output_processor"] = "next_steps"
    body = ",\n".join(f"{pad}    {k}={v}" for k, v in arguments.items())
    return [f"{pad}T[{step.name!r}] = {operator}(\n{body},\n{pad})"]


def _script(manifest: FlowManifest, step: StepSpec, code_root: str, python: str) -> str:
    """The bash script of one step: the step's environment, then its command lines (as
    rendered for the loader's local compute) under Metaflow's log capture, then ``save_logs``;
    its last line of output is what the task hands on (split list, branches, task id)."""
    invocation = StepInvocation(
        flow_name=manifest.flow_name,
        step=step.name,
        run_id=_RUN,
        task_id=_TASK,
        input_paths=_INPUTS,
        retry_count=_RETRY,
        split_index=_SPLIT if step.foreach in step.parents else None,
        parameters_task_id=f"{_TASK}-params" if step.name == START_STEP else None,
    )
    commands = render_step_commands(manifest, step, invocation, python=python, result_file=_RESULT)
    static = dict(commands.env)
    exports = [f"export {k}={shlex.quote(v)}" for k, v in sorted(static.items())]
    for name, value in sorted(manifest.code_package.extract_env.items()):
        value = shlex.quote(value.replace("{root}", code_root))
        if name.endswith(":"):
            exports.append(f"export {name[:-1]}={value}")
        else:
            exports.append(f'export {name}={value}"${{{name}:+:${name}}}"')
    logs = log_env(manifest, invocation, "@@WORK@@")
    log_exports = [f"export {k}={shlex.quote(v)}" for k, v in sorted(logs.items())]
    run = " && ".join(shlex.join(argv) for argv in commands.argvs)
    hand_on = (
        'cat "$WORK/result.json"; echo' if step.type in REPORTING_STEP_TYPES else f"echo {_TASK}"
    )
    script = "\n".join(
        [
            *exports,
            f"cd {shlex.quote(code_root)}",
            'WORK="$(mktemp -d)"',
            *log_exports,
            # Metaflow's capture runs the tees with the `python` of PATH: the worker's, here.
            bash_capture_logs(run).replace("python -m", f"{shlex.quote(python)} -m"),
            "rc=$?",
            f"{shlex.quote(python)} -m metaflow.mflog.save_logs > /dev/null 2>&1",
            'if [ "$rc" != 0 ]; then echo "Task failed." >&2; rm -rf "$WORK"; exit "$rc"; fi',
            hand_on,
            'rm -rf "$WORK"',
        ]
    )
    return _templated(manifest, step, script)


def _templated(manifest: FlowManifest, step: StepSpec, script: str) -> str:
    """Replace the stand-ins with the Jinja expressions a hand-written DAG would use."""
    steps = manifest.steps_by_name
    mine = "ti.map_index" if step.foreach else "-1"
    source = None
    if step.foreach is not None:
        foreach = steps[step.foreach]
        source = f"{foreach.name}__splits" if foreach.foreach else foreach.name
    if step.name == START_STEP:
        inputs = (
            f"{{{{ rid(run_id) }}}}/{PARAMETERS_STEP}/{{{{ tid(run_id, 'start', -1) }}}}-params"
        )
    elif step.joins_foreach:
        joined = steps[step.joins_foreach]
        splits = f"{joined.name}__splits" if joined.foreach else joined.name
        inputs = (
            f"{{{{ joined(run_id, {step.parents[0]!r}, ti.xcom_pull(task_ids={splits!r}), "
            f"{mine}) }}}}"
        )
    else:
        pairs = []
        for parent in step.parents:
            if parent == step.foreach:
                index = f"split_of(ti, {source!r})['MF_PARENT']"
            elif step.foreach is not None and steps[parent].foreach == step.foreach:
                index = "ti.map_index"
            else:
                index = "-1"
            pairs.append(f"({parent!r}, {index})")
        if meets_branches(step):
            inputs = f"{{{{ ran(run_id, ti, [{', '.join(pairs)}]) }}}}"
        else:
            name, index = pairs[0][1:-1].split(", ", 1)
            inputs = f"{{{{ path(run_id, {name}, {index}) }}}}"
    replacements = {
        _INPUTS: inputs,
        _RUN: "{{ rid(run_id) }}",
        _TASK: f"{{{{ tid(run_id, {step.name!r}, {mine}) }}}}",
        _RESULT: "$WORK/result.json",
        "@@WORK@@": "$WORK",
        str(_RETRY): "{{ ti.try_number - 1 }}",
        str(_SPLIT): f"{{{{ split_of(ti, {source!r})['MF_SPLIT'] }}}}",
    }
    # The script is raw text to Jinja (its values may hold braces) but for these expressions.
    for token, expression in replacements.items():
        script = script.replace(token, "{% endraw %}" + expression + "{% raw %}")
    return "{% raw %}" + script + "{% endraw %}"
