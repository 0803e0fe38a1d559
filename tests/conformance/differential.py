"""The oracle of the conformance suite: one flow run under ``python flow.py run`` (the control)
and on Airflow with the same parameters, then both runs read back through Metaflow's Client and
compared task by task: task counts per step, every artifact, task success, stdout and stderr,
cards, run tags and ``Run.successful``. What may differ, and only that, is listed in
``DOCUMENTED_DIFFERENCES`` (mirrored in docs/features.md)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# What differs by design between a run under `python flow.py run` and the same flow's run on
# Airflow; the comparison replaces each with a placeholder before comparing, nothing else.
DOCUMENTED_DIFFERENCES: dict[str, str] = {
    "run id": "`airflow-` + 12 hex characters (from the Airflow run id and the DAG id) instead "
    "of the local runtime's number; `current.run_id`, `current.pathspec`, "
    "`current.origin_run_id` and any artifact holding them differ accordingly",
    "task ids": "`airflow-` + 8 hex characters instead of a number",
    "namespace": "runs on Airflow live in `production:<token>` (as with Metaflow's own "
    "schedulers), runs under `run` in `user:<name>`; `current.namespace`, `current.tags` and "
    "the run's system tags show it",
    "code folder": "a task on Airflow runs the flow, and Metaflow, from its code package, "
    "unpacked into a folder of its own: tracebacks (also those `@catch` stores) name that "
    "folder instead of the flow file's and the installed Metaflow's",
    "times": "timestamps in logs and messages (Metaflow's own log lines carry the time)",
    "join input order": "a foreach join reached from several steps (a switch inside the "
    "body): under `run`, Metaflow lists the inputs grouped by the step each split ended in, in "
    "an order that changes from run to run (a set's); on Airflow they come in split order. The "
    "suite's flows read such inputs in an order of their own",
    "failure": "when a task fails, `run` kills the tasks still running (their logs say "
    "`[KILLED BY ORCHESTRATOR]`) and starts no more; Airflow runs every task that does not "
    "depend on the failed one to its end. Failed runs are compared on the tasks both ran to "
    "their end; resumed runs in full",
    "system tags": "Metaflow's own system tags (`runtime:`, `python_version:`, "
    "`metaflow_version:`) are compared without their values: the Airflow worker's Python may "
    "differ from the publishing one",
}

PLACEHOLDER_RUN = "<run id>"
PLACEHOLDER_NAMESPACE = "<namespace>"
PLACEHOLDER_FOLDER = "<code folder>"
PLACEHOLDER_TIME = "<time>"
TIMESTAMP = re.compile(r"\d{4}-\d\d-\d\d[ T]\d\d:\d\d:\d\d(?:\.\d+)?")
SYSTEM_TAG_KINDS = ("runtime", "python_version", "metaflow_version", "metaflow_r_version")


@dataclass
class TaskRecord:
    """What the Client shows of one task, ids replaced by placeholders."""

    successful: bool
    artifacts: dict[str, Any]
    stdout: str
    stderr: str
    cards: list[tuple[str, str | None]]


@dataclass
class RunRecord:
    """What the Client shows of one run: tasks keyed by step and foreach index path."""

    pathspec: str
    successful: bool
    user_tags: list[str]
    system_tags: list[str]
    tasks: dict[str, TaskRecord] = field(default_factory=dict)

    def task_counts(self) -> dict[str, int]:
        return dict(Counter(key.split("[")[0] for key in self.tasks))


def read_run(flow_name: str, run_id: str) -> RunRecord:
    """The run as Metaflow's Client sees it, in every namespace."""
    from metaflow import Run, namespace

    namespace(None)
    run = Run(f"{flow_name}/{run_id}")
    tasks = [task for step in run for task in step]
    ids = {}
    keyed = {}
    for task in tasks:
        stack = task["_foreach_stack"].data if "_foreach_stack" in task else []
        indexes = [frame.index for frame in stack]
        key = f"{task.parent.id}{indexes}" if indexes else task.parent.id
        ids[task.id] = f"<task id of {key}>"
        keyed[key] = task
    production = [t.split(":", 1)[1] for t in run.system_tags if t.startswith("production:")]
    namespaces = [f"production:{token}" for token in production] + [
        t for t in run.system_tags if t.startswith("user:")
    ]
    canon = _Canon(run_id, ids, namespaces)
    record = RunRecord(
        pathspec=run.pathspec,
        successful=run.successful,
        user_tags=sorted(run.user_tags),
        system_tags=canon.tags(run.system_tags),
    )
    for key, task in sorted(keyed.items()):
        record.tasks[key] = TaskRecord(
            successful=task.successful,
            artifacts={
                a.id: canon.value(a.data)
                for a in task.artifacts
                if not a.id.startswith("_") and a.id != "name"
            },
            stdout=canon.value(task.stdout),
            stderr=canon.value(task.stderr),
            cards=_cards(task),
        )
    return record


class _Canon:
    """Replaces a run's ids and namespace by placeholders, deep inside any artifact value: the
    run id anywhere in a string, a task id when it is the whole string or follows
    ``<run id>/<step>/`` (local task ids are small numbers, which plain text also holds)."""

    def __init__(self, run_id: str, tasks: dict[str, str], namespaces: list[str]) -> None:
        self.run_id = run_id
        self.tasks = tasks
        self.namespaces = namespaces
        self.pathspec = re.compile(rf"{re.escape(PLACEHOLDER_RUN)}/(\w+)/([\w-]+)")
        self.folder = re.compile(r"(?:/[^/\s\"']+)+/(?=\w+_flow\.py|metaflow/)")

    def _text(self, text: str) -> str:
        if text in self.namespaces:
            return PLACEHOLDER_NAMESPACE
        if text in self.tasks:
            return self.tasks[text]
        text = TIMESTAMP.sub(PLACEHOLDER_TIME, text)
        text = self.folder.sub(PLACEHOLDER_FOLDER + "/", text.replace(self.run_id, PLACEHOLDER_RUN))
        return self.pathspec.sub(
            lambda m: f"{PLACEHOLDER_RUN}/{m.group(1)}/{self.tasks.get(m.group(2), m.group(2))}",
            text,
        )

    def tags(self, tags: Any) -> list[str]:
        out = set()
        for tag in tags:
            kind = tag.split(":", 1)[0]
            if tag in self.namespaces:
                out.add(PLACEHOLDER_NAMESPACE)
                continue
            out.add(f"{kind}:<value>" if kind in SYSTEM_TAG_KINDS else tag)
        return sorted(out)

    def value(self, value: Any) -> Any:
        from metaflow.exception import MetaflowExceptionWrapper

        if isinstance(value, str):
            return self._text(value)
        if isinstance(value, MetaflowExceptionWrapper):
            return ("exception", value.type, self.value(value.exception))
        if isinstance(value, dict):
            return {self.value(k): self.value(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return type(value)(self.value(v) for v in value)
        if isinstance(value, (set, frozenset)):
            return type(value)(self.value(v) for v in value)
        return value


def _cards(task: Any) -> list[tuple[str, str | None]]:
    from metaflow.cards import get_cards
    from metaflow.plugins.cards.exception import CardNotPresentException

    try:
        return sorted((card.type, card.id) for card in get_cards(task))
    except CardNotPresentException:
        return []


def compare_runs(control: RunRecord, airflow: RunRecord) -> list[str]:
    """Every difference between the two runs beyond the documented ones, one line each."""
    diffs = []
    if control.successful != airflow.successful:
        diffs.append(f"Run.successful: run {control.successful}, Airflow {airflow.successful}")
    if control.task_counts() != airflow.task_counts():
        diffs.append(
            f"tasks per step: run {control.task_counts()}, Airflow {airflow.task_counts()}"
        )
    for name in ("user_tags", "system_tags"):
        if getattr(control, name) != getattr(airflow, name):
            diffs.append(f"{name}: run {getattr(control, name)}, Airflow {getattr(airflow, name)}")
    for key in sorted(set(control.tasks) & set(airflow.tasks)):
        ours, theirs = control.tasks[key], airflow.tasks[key]
        for name in ("successful", "stdout", "stderr", "cards"):
            if getattr(ours, name) != getattr(theirs, name):
                diffs.append(f"{key} {name}: " + _where(getattr(ours, name), getattr(theirs, name)))
        for artifact in sorted(set(ours.artifacts) | set(theirs.artifacts)):
            mine = ours.artifacts.get(artifact, "<missing>")
            other = theirs.artifacts.get(artifact, "<missing>")
            if mine != other:
                diffs.append(f"{key}.{artifact}: " + _where(mine, other))
    for key in sorted(set(control.tasks) ^ set(airflow.tasks)):
        diffs.append(f"task {key} only {'under run' if key in control.tasks else 'on Airflow'}")
    return diffs


def _where(ours: Any, theirs: Any) -> str:
    """Both values around the first character where their reprs differ."""
    a, b = repr(ours), repr(theirs)
    at = next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))
    start = max(0, at - 120)
    return f"run …{a[start : at + 200]}, Airflow …{b[start : at + 200]}"


def assert_success_means_end_ran(state: str, record: RunRecord) -> None:
    """The invariant of every Airflow run of a published flow: a successful DagRun is a
    successful Metaflow run, whose ``end`` step ran."""
    if state == "success":
        assert record.successful and "end" in record.tasks, (
            f"the DagRun succeeded but Metaflow's run did not finish: {record.pathspec} "
            f"(successful={record.successful}, steps {sorted(record.task_counts())})"
        )


@dataclass
class LocalRun:
    """``python flow.py <command>`` running in a subprocess, next to the Airflow run."""

    process: subprocess.Popen
    run_id_file: Path
    output: Path

    @classmethod
    def start(cls, flow_file: Path, command: list[str], env: dict[str, str] | None = None):
        folder = flow_file.parent
        run_id_file, output = folder / f"{command[0]}-run-id", folder / f"{command[0]}-output"
        run_id_file.unlink(missing_ok=True)
        with output.open("w") as log:
            process = subprocess.Popen(
                [sys.executable, str(flow_file), *command, "--run-id-file", str(run_id_file)],
                cwd=folder,
                env={**os.environ, **(env or {})},
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        return cls(process, run_id_file, output)

    def finish(self, timeout: float = 300) -> tuple[int, str | None, str]:
        """Exit code, Metaflow run id (None if the run never started) and the output's tail."""
        code = self.process.wait(timeout=timeout)
        run_id = self.run_id_file.read_text().strip() if self.run_id_file.exists() else None
        return code, run_id, self.output.read_text()[-3000:]
