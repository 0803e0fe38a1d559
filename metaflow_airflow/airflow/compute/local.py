"""Local compute: each step runs as a process on the Airflow worker, in a fresh unpack of the
code package (as a pod would), with the split count handed back through a private file."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Mapping, Sequence
from typing import Any

import fsspec

from metaflow_airflow.airflow.compat import BaseOperator, SkipMixin
from metaflow_airflow.airflow.compute.context import (
    BoundStep,
    hand_back,
    resolve_or_fail,
    task_ref_from_context,
)
from metaflow_airflow.airflow.ui import MetaflowUILink, record_metaflow_ids
from metaflow_airflow.manifest.models import CodePackage, FlowManifest
from metaflow_airflow.runtime.commands import REPORTING_STEP_TYPES, render_step_commands
from metaflow_airflow.settings import get_settings
from metaflow_airflow.store.clouds.registry import cloud_for_datastore

RESULT_FILE = "metaflow-airflow-result.json"


class MetaflowLocalOperator(BoundStep, BaseOperator, SkipMixin):
    """Runs one Metaflow step as a local process; a foreach step returns its split indexes.
    Without an ``__init__`` of its own, as :class:`~.kubernetes.MetaflowKubernetesOperator`."""

    ui_color = "#c7e3f4"
    operator_extra_links = (MetaflowUILink(),)

    def execute(self, context: Any) -> list[int] | None:
        ref = task_ref_from_context(context, self.manifest, self.step)
        invocation = resolve_or_fail(self.manifest, self.step, ref)
        self.log.info("Metaflow task %s (attempt %s)", invocation.pathspec, invocation.retry_count)
        record_metaflow_ids(context, invocation)
        python = get_settings().local_python or sys.executable
        with tempfile.TemporaryDirectory(prefix="metaflow-airflow-") as workdir:
            root = unpack_code_package(self.manifest, workdir)
            result_file = os.path.join(workdir, RESULT_FILE)
            commands = render_step_commands(
                self.manifest, self.step, invocation, python=python, result_file=result_file
            )
            env = process_environment(commands.env, self.manifest.code_package, root)
            for argv in commands.argvs:
                self._run(argv, cwd=root, env=env)
            result = None
            if self.step.type in REPORTING_STEP_TYPES:
                with open(result_file, encoding="utf-8") as report:
                    result = json.load(report)
        return hand_back(self, context, self.step, invocation, result)

    def _run(self, argv: Sequence[str], *, cwd: str, env: Mapping[str, str]) -> None:
        """Stream the process's output into the task log; kill its whole group on timeout."""
        process = subprocess.Popen(
            list(argv),
            cwd=cwd,
            env=dict(env),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        try:
            assert process.stdout is not None
            for line in process.stdout:
                self.log.info("%s", line.rstrip("\n"))
            code = process.wait()
        finally:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        if code != 0:
            raise RuntimeError(f"Metaflow step {self.step.name} failed with exit code {code}")


def unpack_code_package(manifest: FlowManifest, workdir: str) -> str:
    """Fetch the code package from the flow's datastore and unpack it into ``workdir``, with
    options that reach it where the manifest's Metaflow configuration points (an S3 endpoint, a
    GCS emulator, an Azure account); credentials are the worker's own."""
    runtime = manifest.metaflow
    cloud = cloud_for_datastore(runtime.datastore)
    url, options = cloud.package_location(manifest.code_package.url, runtime.env)
    root = os.path.join(workdir, "code")
    with fsspec.open(url, "rb", **options) as blob, tarfile.open(fileobj=blob, mode="r:gz") as tar:
        tar.extractall(root, filter="data")
    return root


def process_environment(
    step_env: Mapping[str, str], package: CodePackage, root: str
) -> dict[str, str]:
    """The worker's environment, then the step's, then what the unpacked package needs."""
    env = {**os.environ, **step_env}
    for name, value in package.extract_env.items():
        value = value.replace("{root}", root)
        if name.endswith(":"):
            env[name[:-1]] = value
        else:
            env[name] = os.pathsep.join(v for v in (value, env.get(name)) if v)
    return env
