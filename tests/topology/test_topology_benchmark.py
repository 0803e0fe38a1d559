"""``benchmarks/topology.py`` still runs on the session's stack: the linear flow published, its
hand-written DAG written next to the loader, one run of each, and the hand-written run's Metaflow
artifacts equal to the loader's (what makes the benchmark's comparison honest). A smoke test,
not a measurement: the timed parts are the benchmark's."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

BENCHMARK = Path(__file__).resolve().parents[2] / "benchmarks" / "topology.py"


@pytest.mark.topology
@pytest.mark.timeout(600)
def test_the_hand_written_dag_of_the_topology_benchmark_runs_the_same_steps(stack):
    spec = importlib.util.spec_from_file_location("topology_benchmark", BENCHMARK)
    assert spec is not None and spec.loader is not None
    benchmark = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = benchmark  # its dataclasses look their module up
    spec.loader.exec_module(benchmark)
    pairs = benchmark.prepare(stack, ["linear"])
    assert (stack.home / "dags" / f"{pairs[0].by_hand}.py").exists()
    benchmark.warm_up(stack, pairs)  # raises if a run fails or the artifacts differ
