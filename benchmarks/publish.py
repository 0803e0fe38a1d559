"""Publish-time benchmark (issue 6). Not a test::

    .venv/bin/python benchmarks/publish.py [--quick] [--runs 5]

For the three-step and the fifty-step flow, the wall time a user waits for
``metaflow-airflow publish flow.py`` (Kubernetes compute, S3 datastore) and for Metaflow's own
``python flow.py airflow create dag.py`` (same datastore and Kubernetes settings), alternating
the two, against the same moto S3 server in the same run; median of --runs.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import time
from pathlib import Path

from common import PYTHON, Workspace, median

FLOWS = ("three_step_flow.py", "fifty_step_flow.py")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="3 runs")
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    runs = 3 if args.quick and args.runs == 5 else args.runs
    workspace = Workspace().start()
    try:
        timings = {flow: measure(workspace, flow, runs) for flow in FLOWS}
    finally:
        workspace.stop()
        shutil.rmtree(workspace.root, ignore_errors=True)
    print(f"{'flow':<20}{'publish s (range)':<22}{'airflow create s (range)':<28}publish/create")
    for flow, (publish, create) in timings.items():
        if not publish or not create:
            print(f"{flow:<20}failed: see the lines marked '!' above")
            continue
        print(
            f"{flow:<20}{median(publish):.2f} ({_range(publish)}){'':<6}"
            f"{median(create):.2f} ({_range(create)}){'':<12}{median(publish) / median(create):.2f}"
        )
    print("target: publish <= 1.0 x airflow create")


def measure(ws: Workspace, flow: str, runs: int) -> tuple[list[float], list[float]]:
    """Wall times of both commands; a failed run is reported and left out."""
    assert ws.moto
    bucket = ws.moto.bucket()
    datastore = ["--datastore=s3", f"--datastore-root={bucket}/metaflow"]
    publish = [
        str(Path(PYTHON).parent / "metaflow-airflow"), "publish", flow,
        "--store", f"{bucket}/flows", "--storage-options", json.dumps(ws.storage_options),
        "--compute", "kubernetes", "--image", "python:3.11", "--datastore", "s3",
        "--datastore-root", f"{bucket}/metaflow",
    ]
    create = [PYTHON, flow, "--quiet", *datastore, "airflow", "create", str(ws.root / "dag.py")]
    published: list[float | None] = []
    created: list[float | None] = []
    print(f"• {flow}: {runs} x publish, {runs} x airflow create, alternating...", flush=True)
    for _ in range(runs):
        published.append(_timed(publish, ws))
        created.append(_timed(create, ws))
    return [t for t in published if t is not None], [t for t in created if t is not None]


def _timed(argv: list[str], ws: Workspace) -> float | None:
    started = time.perf_counter()
    completed = subprocess.run(argv, cwd=ws.root, env=ws.env(), capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    if completed.returncode != 0:
        last = (completed.stderr.strip().splitlines() or ["(no output)"])[-1]
        print(f"  ! {' '.join(argv[:3])}... failed: {last}", flush=True)
        return None
    return elapsed


def _range(values: list[float]) -> str:
    return f"{min(values):.2f}–{max(values):.2f}"


if __name__ == "__main__":
    main()
