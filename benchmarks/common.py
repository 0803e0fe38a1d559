"""What both benchmarks share: a scratch workspace with an Airflow home, a moto S3 server on
127.0.0.1, the benchmark flows, and fresh-process timing. Not a test: run parse.py or publish.py.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
# The tests' moto_server wrapper (start, stop, a fresh bucket), rather than a second copy.
sys.path.insert(0, str(REPO / "tests" / "integration"))
from moto_process import AWS_ENV, MotoServer

THREE_STEP_FLOW = '''\
"""A three-step flow for the benchmarks."""

from metaflow import FlowSpec, Parameter, step


class ThreeStepFlow(FlowSpec):
    """start, work, end."""

    size = Parameter("size", default=3, help="How much work.")

    @step
    def start(self):
        self.items = list(range(self.size))
        self.next(self.work)

    @step
    def work(self):
        self.total = sum(self.items)
        self.next(self.end)

    @step
    def end(self):
        print(self.total)


if __name__ == "__main__":
    ThreeStepFlow()
'''


def fifty_step_flow() -> str:
    """A linear flow of 50 steps: start, step_01 ... step_48, end."""
    names = ["start", *(f"step_{i:02d}" for i in range(1, 49)), "end"]
    steps = []
    for name, following in zip(names, [*names[1:], None]):
        body = f"self.next(self.{following})" if following else "pass"
        steps.append(f"    @step\n    def {name}(self):\n        {body}\n")
    return (
        '"""A fifty-step linear flow for the benchmarks."""\n\n'
        "from metaflow import FlowSpec, step\n\n\n"
        "class FiftyStepFlow(FlowSpec):\n"
        '    """Fifty steps in a row."""\n\n' + "\n".join(steps) + "\n\n"
        'if __name__ == "__main__":\n    FiftyStepFlow()\n'
    )


@dataclass
class Workspace:
    """A temporary folder with an Airflow home (parsing needs no database) and a moto server."""

    root: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="mfa-bench-")))
    moto: MotoServer | None = None

    def start(self) -> Workspace:
        os.environ.update(AWS_ENV)  # this process reads and writes the moto server too
        (self.root / "airflow").mkdir()
        self.moto = MotoServer(self.root / "moto")
        (self.root / "three_step_flow.py").write_text(THREE_STEP_FLOW)
        (self.root / "fifty_step_flow.py").write_text(fifty_step_flow())
        return self

    def stop(self) -> None:
        if self.moto:
            self.moto.stop()

    @property
    def storage_options(self) -> dict[str, Any]:
        assert self.moto
        return self.moto.storage_options

    def env(self, **extra: str) -> dict[str, str]:
        """The environment of every child: Airflow home, S3 endpoint and credentials, Metaflow
        configuration for publishing to that S3 with Kubernetes compute."""
        dropped = ("AWS_PROFILE", "AWS_SESSION_TOKEN")
        inherited = {
            k: v
            for k, v in os.environ.items()
            if k not in dropped and not k.startswith("METAFLOW_AIRFLOW_")
        }
        env = {
            **inherited,
            **AWS_ENV,
            "AIRFLOW_HOME": str(self.root / "airflow"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__LOGGING__LOGGING_LEVEL": "ERROR",
            "METAFLOW_USER": "bench",
            "METAFLOW_DATASTORE_SYSROOT_LOCAL": str(self.root / "metaflow"),
            "METAFLOW_KUBERNETES_NAMESPACE": "default",
            "METAFLOW_KUBERNETES_CONTAINER_IMAGE": "python:3.11",
        }
        if self.moto:
            env["METAFLOW_S3_ENDPOINT_URL"] = self.moto.endpoint
        env.update(extra)
        return env


def run_python(code: str, *args: str, env: dict[str, str]) -> dict:
    """Run ``code`` in a fresh interpreter; it writes a JSON object to its last argument."""
    with tempfile.TemporaryDirectory() as folder:
        result = Path(folder) / "result.json"
        completed = subprocess.run(
            [PYTHON, "-c", textwrap.dedent(code), *args, str(result)],
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        if completed.returncode != 0 or not result.exists():
            raise RuntimeError(f"benchmark child failed:\n{completed.stderr[-3000:]}")
        return json.loads(result.read_text())


def median(values: list[float]) -> float:
    return statistics.median(values)


def spread(values: list[float]) -> str:
    return f"{min(values):.0f}–{max(values):.0f}"
