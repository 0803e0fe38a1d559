"""Scheduling overhead on the production topology (issue 16). Not a test::

    .venv/bin/python benchmarks/topology.py [--runs 50] [--samples 3] [--shapes linear,branch,...]
    .venv/bin/python benchmarks/topology.py --quick      # --runs 5 --samples 1

On the stack of ``tests/topology/stack.py`` (PostgreSQL, Redis, CeleryExecutor with two workers,
scheduler, DAG processor, API server, triggerer, moto S3), for five flows (linear, branch,
foreach with a two-step body, nested foreach, conditional: the flows of
``tests/topology/test_load.py``), the loader's DAG of each published flow against the same steps
as a hand-written DAG (``benchmarks/by_hand.py``: BashOperators running the identical command
lines, the same code package unpacked once, the same datastore and metadata). All in one run:

1. a warm-up run of every DAG, whose Metaflow artifacts must be equal for both kinds;
2. latency: one run at a time, loader and by hand alternating, --samples rounds: the time from
   trigger to run success (the run's ``end_date - queued_at`` as Airflow records them);
3. throughput: --runs runs triggered together (the five flows in turn), first all loader DAGs,
   then all hand-written ones: task instances that ran per minute, from the first run's queueing
   to the last run's end.

Prints each figure and the ratio loader / by hand (goal of the issue: within 1.1x).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO / "tests" / "topology"), str(REPO / "benchmarks")]

from by_hand import write_dag
from stack import AWS_ENV, Stack, stop_on_signals
from test_load import FLOWS

from metaflow_airflow.airflow.compute.local import unpack_code_package
from metaflow_airflow.manifest.models import FlowManifest
from metaflow_airflow.store.manifest_store import ManifestStore

SHAPES = dict(zip(("linear", "branch", "foreach", "nested", "switch"), FLOWS, strict=True))
KINDS = ("loader", "by hand")
RAN = {"success"}  # task instances counted as having run (skipped ones did not)


@dataclass(frozen=True)
class Pair:
    """One flow, published (``loader``) and written by hand (``by_hand``)."""

    shape: str
    flow_name: str
    conf: Callable[[int], dict[str, Any]]
    loader: str
    by_hand: str

    def dag(self, kind: str) -> str:
        return self.loader if kind == "loader" else self.by_hand


@dataclass
class Throughput:
    runs: int
    failed: int
    tasks: int
    seconds: float
    durations: list[float]  # of each task instance that ran, as Airflow records it

    @property
    def per_minute(self) -> float:
        return self.tasks / self.seconds * 60


class BenchmarkStack(Stack):
    """The topology tests' stack, but for the loader's cache freshness: the tests set
    ``METAFLOW_AIRFLOW_CACHE_FRESH_SECONDS=0`` (every task's parse reads its manifest from the
    store); ``None`` leaves the loader's default, as a deployment does."""

    def __init__(self, root: Path, cache_fresh_seconds: int | None) -> None:
        super().__init__(root)
        self.cache_fresh_seconds = cache_fresh_seconds

    def _environment(self, bucket: str) -> dict[str, str]:
        env = super()._environment(bucket)
        env.pop("METAFLOW_AIRFLOW_CACHE_FRESH_SECONDS", None)
        if self.cache_fresh_seconds is not None:
            env["METAFLOW_AIRFLOW_CACHE_FRESH_SECONDS"] = str(self.cache_fresh_seconds)
        return env


def prepare(stack: Stack, shapes: list[str]) -> list[Pair]:
    """Publish each flow, write its hand-written DAG next to the loader, wait for both DAGs."""
    from helpers import flow_path

    os.environ.update(AWS_ENV)  # this process reads the code packages from the moto server
    store = ManifestStore(stack.store_url, stack.storage_options)
    python = shutil.which("python", path=str(stack.bin)) or stack.python
    pairs = []
    for shape in shapes:
        flow, flow_name, conf = SHAPES[shape]
        out = stack.publish(flow_path(flow))
        dag_id = out.split("dag_id:", 1)[1].split()[0]
        manifest = FlowManifest.model_validate(store.current(dag_id))
        code_root = unpack_code_package(manifest, stack.root / "by-hand-code")
        by_hand = f"by_hand_{dag_id}"
        write_dag(manifest, by_hand, code_root, python, stack.home / "dags")
        pairs.append(Pair(shape, flow_name, conf, dag_id, by_hand))
    for pair in pairs:
        for kind in KINDS:
            try:
                stack.api.wait_for_dag(pair.dag(kind), timeout=300)
            except TimeoutError:
                errors = stack.api.call("GET", "/importErrors")["import_errors"]
                raise RuntimeError(f"{pair.dag(kind)} did not load: {errors}") from None
    return pairs


def warm_up(stack: Stack, pairs: list[Pair]) -> None:
    """One run of every DAG (code unpacked on each worker, caches filled); a hand-written run
    must leave the same Metaflow artifacts as the loader's run of the same parameters."""
    runs = [(p, kind, stack.api.trigger(p.dag(kind), p.conf(0))) for p in pairs for kind in KINDS]
    artifacts: dict[tuple[str, str], Any] = {}
    for pair, kind, run_id in runs:
        state = stack.api.wait_for_run(pair.dag(kind), run_id, timeout=900)
        if state != "success":
            raise RuntimeError(
                f"warm-up run {run_id} of {pair.dag(kind)}: {state}; see {stack.logs}"
            )
        artifacts[pair.shape, kind] = stack.run_artifacts(pair.flow_name, pair.dag(kind), run_id)
    for pair in pairs:
        if artifacts[pair.shape, "loader"] != artifacts[pair.shape, "by hand"]:
            raise RuntimeError(f"{pair.shape}: the hand-written DAG's artifacts differ")


def latency(stack: Stack, pairs: list[Pair], samples: int) -> dict[tuple[str, str], list[float]]:
    """Seconds from trigger to success of single runs, loader and by hand alternating."""
    seconds: dict[tuple[str, str], list[float]] = {}
    for sample in range(samples):
        for pair in pairs:
            for kind in KINDS if sample % 2 == 0 else KINDS[::-1]:
                dag_id = pair.dag(kind)
                run_id = stack.api.trigger(dag_id, pair.conf(sample))
                state = stack.api.wait_for_run(dag_id, run_id, timeout=900)
                run = stack.api.run(dag_id, run_id)
                if state != "success":
                    raise RuntimeError(f"run {run_id} of {dag_id}: {state}; see {stack.logs}")
                took = (_time(run["end_date"]) - _time(run["queued_at"])).total_seconds()
                seconds.setdefault((pair.shape, kind), []).append(took)
                print(f"  {pair.shape:<8}{kind:<9}{took:6.1f} s", flush=True)
    return seconds


def throughput(stack: Stack, pairs: list[Pair], runs: int, kind: str) -> Throughput:
    """``runs`` runs at once, the flows in turn: task instances that ran per minute."""
    triggered = []
    for i in range(runs):
        pair = pairs[i % len(pairs)]
        triggered.append((pair.dag(kind), stack.api.trigger(pair.dag(kind), pair.conf(i))))
    failed, tasks, first, last = 0, 0, None, None
    durations: list[float] = []
    for dag_id, run_id in triggered:
        state = stack.api.wait_for_run(dag_id, run_id, timeout=3600)
        failed += state != "success"
        run = stack.api.run(dag_id, run_id)
        queued, ended = _time(run["queued_at"]), _time(run["end_date"])
        first = queued if first is None else min(first, queued)
        last = ended if last is None else max(last, ended)
        ran = [ti for ti in stack.api.task_instances(dag_id, run_id) if ti["state"] in RAN]
        tasks += len(ran)
        durations += [ti["duration"] for ti in ran if ti["duration"] is not None]
    assert first is not None and last is not None
    return Throughput(runs, failed, tasks, (last - first).total_seconds(), durations)


def _time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def measure(stack: Stack, shapes: list[str], runs: int, samples: int) -> str:
    """Everything above on a started stack; returns the report."""
    started = time.monotonic()
    print(f"• publishing {', '.join(shapes)} and writing their hand-written DAGs...", flush=True)
    pairs = prepare(stack, shapes)
    print("• warm-up: one run of each DAG, artifacts compared...", flush=True)
    warm_up(stack, pairs)
    if samples:
        print(f"• latency: {samples} x {len(pairs)} x 2 runs, one at a time...", flush=True)
    seconds = latency(stack, pairs, samples)
    rates = {}
    for kind in KINDS:
        print(f"• throughput: {runs} runs of the {kind} DAGs at once...", flush=True)
        rates[kind] = throughput(stack, pairs, runs, kind)
    return report(pairs, seconds, rates, time.monotonic() - started)


def report(
    pairs: list[Pair],
    seconds: dict[tuple[str, str], list[float]],
    rates: dict[str, Throughput],
    elapsed: float,
) -> str:
    lines = []
    if seconds:
        lines += [
            f"trigger to success, s: median (range) of {len(seconds[pairs[0].shape, 'loader'])}",
            f"{'flow':<10}{'loader':<20}{'by hand':<20}loader / by hand",
        ]
        for pair in pairs:
            mine, theirs = seconds[pair.shape, "loader"], seconds[pair.shape, "by hand"]
            lines.append(
                f"{pair.shape:<10}{_spread(mine):<20}{_spread(theirs):<20}"
                f"{statistics.median(mine) / statistics.median(theirs):.2f}"
            )
        total = {k: sum(statistics.median(seconds[p.shape, k]) for p in pairs) for k in KINDS}
        lines.append(
            f"{'sum':<10}{total['loader']:<20.1f}{total['by hand']:<20.1f}"
            f"{total['loader'] / total['by hand']:.2f}\n"
        )
    loader, by_hand = rates["loader"], rates["by hand"]
    lines.append(
        f"{loader.runs} runs at once: tasks per minute (tasks / s from first queued to last end)"
    )
    for kind, rate in rates.items():
        failed = f", {rate.failed} FAILED" if rate.failed else ""
        lines.append(
            f"{kind:<10}{rate.per_minute:6.1f}   ({rate.tasks} tasks / {rate.seconds:.0f} s{failed};"
            f" a task's duration: median {statistics.median(rate.durations):.1f} s)"
        )
    lines.append(
        f"loader / by hand: {loader.per_minute / by_hand.per_minute:.2f} tasks per minute, "
        f"{loader.seconds / by_hand.seconds:.2f} time"
    )
    lines.append(f"goal: within 1.1x (time ratios <= 1.1). Benchmark took {elapsed / 60:.0f} min.")
    return "\n".join(lines)


def _spread(values: list[float]) -> str:
    return f"{statistics.median(values):.1f} ({min(values):.1f}–{max(values):.1f})"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=50, help="runs at once (throughput)")
    parser.add_argument(
        "--samples", type=int, default=3, help="single runs per DAG (latency; 0: none)"
    )
    parser.add_argument("--shapes", default=",".join(SHAPES), help="of " + ",".join(SHAPES))
    parser.add_argument("--quick", action="store_true", help="--runs 5 --samples 1")
    parser.add_argument(
        "--cache-fresh-seconds",
        type=int,
        help="the workers' METAFLOW_AIRFLOW_CACHE_FRESH_SECONDS (default: the loader's, 60; "
        "the topology tests use 0)",
    )
    args = parser.parse_args()
    runs, samples = (5, 1) if args.quick else (args.runs, args.samples)
    shapes = args.shapes.split(",")
    if unknown := set(shapes) - set(SHAPES):
        parser.error(f"unknown shapes: {', '.join(sorted(unknown))}")
    stop_on_signals()
    root = Path(tempfile.mkdtemp(prefix="mfa-bench-topology-"))
    stack = BenchmarkStack(root, args.cache_fresh_seconds)
    fresh = args.cache_fresh_seconds
    print(
        f"• starting the stack (Airflow {stack.major}) in {root}, cache_fresh_seconds "
        f"{'default' if fresh is None else fresh}...",
        flush=True,
    )
    try:
        stack.start()
        print(_load(), flush=True)
        print(measure(stack, shapes, runs, samples))
        print(_load())
    finally:
        stack.stop()
        shutil.rmtree(root, ignore_errors=True)
    return 0


def _load() -> str:
    """The machine's load (the figures are only comparable on an otherwise quiet machine)."""
    return (
        "load: "
        + subprocess.run(["uptime"], check=False, capture_output=True, text=True).stdout.strip()
    )


if __name__ == "__main__":
    raise SystemExit(main())
