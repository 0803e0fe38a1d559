"""What `metaflow-airflow trigger` / `runs`, the flow command and the Deployer do with Airflow's
API: type a run's parameters from the published manifest, trigger it (waiting, bounded, for the
DAG to be parsed; refusing a paused DAG unless asked to unpause), follow it to its end, and
describe runs with their Metaflow run ids. Imports neither Airflow nor Metaflow.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from metaflow_airflow.errors import AirflowApiError, ParameterError
from metaflow_airflow.manifest.models import FlowManifest, ParameterSpec
from metaflow_airflow.rest.client import FINISHED_STATES, AirflowApi
from metaflow_airflow.runtime.ids import metaflow_run_id

# How many lines of a failed step's log `--wait` shows.
LOG_TAIL_LINES = 20


def parse_param_pairs(pairs: Iterable[str]) -> dict[str, str]:
    """``k=v`` texts → {k: v} (the text after the first ``=`` is the value, as given)."""
    values: dict[str, str] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name:
            raise ParameterError(f"--param {pair!r}: expected NAME=VALUE")
        values[name] = value
    return values


def typed_conf(parameters: Sequence[ParameterSpec], values: Mapping[str, Any]) -> dict[str, Any]:
    """A run's conf: each value converted to its Parameter's type (text from a command line,
    or Python values from the Deployer). Unknown names and values of the wrong type are
    refused here, before anything is sent."""
    specs = {p.name: p for p in parameters}
    conf: dict[str, Any] = {}
    for name, value in values.items():
        spec = specs.get(name) or specs.get(name.replace("_", "-"))
        if spec is None:
            known = ", ".join(sorted(specs)) or "none"
            raise ParameterError(f"unknown parameter {name!r} (the flow's parameters: {known})")
        conf[spec.name] = _typed(spec, value)
    missing = [
        p.name for p in parameters if p.required and p.default is None and p.name not in conf
    ]
    if missing:
        raise ParameterError(f"required parameter(s) without a value: {', '.join(missing)}")
    return conf


def _typed(spec: ParameterSpec, value: Any) -> Any:
    def refuse(why: str = "") -> ParameterError:
        return ParameterError(
            f"parameter {spec.name!r} takes {_TYPE_WORDS[spec.type]}, not {value!r}{why}"
        )

    if spec.type == "str":
        return value if isinstance(value, str) else json.dumps(value)
    if spec.type == "json":
        if not isinstance(value, str):
            return value
        try:
            return json.loads(value)
        except ValueError as exc:
            raise refuse(f" ({exc})") from exc
    if spec.type == "bool":
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in _BOOL_WORDS:
            return _BOOL_WORDS[value.lower()]
        raise refuse()
    if isinstance(value, bool):
        raise refuse()
    try:
        number = int(value) if spec.type == "int" else float(value)
    except (TypeError, ValueError) as exc:
        raise refuse() from exc
    if spec.type == "int" and isinstance(value, float) and value != number:
        raise refuse()
    return number


_TYPE_WORDS = {
    "str": "text",
    "int": "an integer",
    "float": "a number",
    "bool": "true or false",
    "json": "JSON",
}
_BOOL_WORDS = {"true": True, "1": True, "yes": True, "false": False, "0": False, "no": False}


@dataclass(frozen=True)
class RunInfo:
    """One DAG run, as `runs` lists it and `trigger --json` prints it."""

    dag_id: str
    run_id: str
    state: str
    start: str | None
    end: str | None
    duration_seconds: float | None
    metaflow_run_id: str
    pathspec: str
    airflow_url: str
    metaflow_ui_url: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def run_info(
    api: AirflowApi, flow_name: str, dag_run: Mapping[str, Any], ui_url: str | None = None
) -> RunInfo:
    dag_id, run_id = dag_run["dag_id"], dag_run["dag_run_id"]
    mf_run = metaflow_run_id(run_id, dag_id)
    start, end = dag_run.get("start_date"), dag_run.get("end_date")
    return RunInfo(
        dag_id=dag_id,
        run_id=run_id,
        state=str(dag_run.get("state") or "queued"),
        start=start,
        end=end,
        duration_seconds=_seconds_between(start, end),
        metaflow_run_id=mf_run,
        pathspec=f"{flow_name}/{mf_run}",
        airflow_url=airflow_run_url(api, dag_id, run_id),
        metaflow_ui_url=f"{ui_url.rstrip('/')}/{flow_name}/{mf_run}" if ui_url else None,
    )


def airflow_run_url(api: AirflowApi, dag_id: str, run_id: str) -> str:
    """The run's page in Airflow's UI."""
    if api.api_version == 3:
        return f"{api.base_url}/dags/{dag_id}/runs/{run_id}"
    return f"{api.base_url}/dags/{dag_id}/grid?dag_run_id={run_id}"


def _seconds_between(start: str | None, end: str | None) -> float | None:
    if not start or not end:
        return None
    return round((_when(end) - _when(start)).total_seconds(), 1)


def _when(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def trigger_run(
    api: AirflowApi,
    manifest: FlowManifest,
    conf: Mapping[str, Any],
    *,
    unpause: bool = False,
    dag_id_prefix: str = "",
    wait_seconds: float = 120.0,
    on_wait: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Trigger the manifest's DAG with ``conf`` (already typed). Waits up to ``wait_seconds``
    for Airflow to parse a DAG published a moment ago; a paused DAG is refused, or unpaused
    when ``unpause``. ``dag_id_prefix`` is the loader's (``METAFLOW_AIRFLOW_DAG_ID_PREFIX``):
    Airflow knows the DAG as the prefix and the manifest's DAG id."""
    dag_id = dag_id_prefix + manifest.dag_id
    dag = api.wait_for_dag(
        dag_id,
        wait_seconds,
        on_wait=None
        if on_wait is None
        else lambda: on_wait(
            f"waiting up to {wait_seconds:g} s for Airflow to parse DAG {dag_id}..."
        ),
    )
    if dag.get("is_paused"):
        if not unpause:
            raise AirflowApiError(
                f"DAG {dag_id!r} is paused: its runs would wait forever; unpause it in "
                "Airflow's UI or trigger with --unpause"
            )
        api.set_paused(dag_id, False)
    return api.trigger(dag_id, dict(conf))


@dataclass(frozen=True)
class Progress:
    """Where a run stands: tasks finished of all known, and the steps running now."""

    state: str
    done: int
    total: int
    running: tuple[str, ...]

    def line(self) -> str:
        running = f", running: {', '.join(self.running)}" if self.running else ""
        return f"{self.state}: {self.done}/{self.total} tasks done{running}"


_DONE_TASK_STATES = ("success", "failed", "skipped", "upstream_failed", "removed")


def progress(api: AirflowApi, dag_id: str, run_id: str) -> Progress:
    state = str(api.dag_run(dag_id, run_id).get("state"))
    tasks = api.task_instances(dag_id, run_id)
    done = sum(1 for t in tasks if t.get("state") in _DONE_TASK_STATES)
    running = sorted({t["task_id"] for t in tasks if t.get("state") == "running"})
    return Progress(state=state, done=done, total=len(tasks), running=tuple(running))


def wait_for_run(
    api: AirflowApi,
    dag_id: str,
    run_id: str,
    *,
    poll_seconds: float = 2.0,
    timeout: float | None = None,
    on_progress: Callable[[Progress], None] | None = None,
) -> Progress:
    """Until the run finishes; ``on_progress`` sees each change of where it stands."""
    deadline = None if timeout is None else time.monotonic() + timeout
    last = None
    while True:
        now = progress(api, dag_id, run_id)
        if now != last and on_progress is not None:
            on_progress(now)
        last = now
        if now.state in FINISHED_STATES:
            return now
        if deadline is not None and time.monotonic() > deadline:
            raise AirflowApiError(f"run {run_id} of {dag_id} still {now.state} after {timeout:g} s")
        time.sleep(poll_seconds)


def failed_steps(api: AirflowApi, dag_id: str, run_id: str) -> list[tuple[str, str]]:
    """(task id, the last lines of its log) of each failed task of the run."""
    failed = []
    for task in api.task_instances(dag_id, run_id):
        if task.get("state") != "failed":
            continue
        try:
            log = api.task_log(dag_id, run_id, task)
        except AirflowApiError as exc:
            log = f"(no log: {exc})"
        lines = [line for line in log.splitlines() if line.strip()]
        failed.append((task["task_id"], "\n".join(lines[-LOG_TAIL_LINES:])))
    return failed


def find_dag_run(
    api: AirflowApi, dag_id: str, run_id: str, *, search: int = 100
) -> dict[str, Any] | None:
    """The DAG run of ``run_id``: an Airflow run id, or a Metaflow run id (``airflow-<hash>``
    of the Airflow run id, which cannot be reversed: the newest ``search`` runs are hashed)."""
    if not run_id.startswith("airflow-"):
        try:
            return api.dag_run(dag_id, run_id)
        except AirflowApiError:
            return None
    for dag_run in api.dag_runs(dag_id, search):
        if metaflow_run_id(dag_run["dag_run_id"], dag_id) == run_id:
            return dag_run
    return None
