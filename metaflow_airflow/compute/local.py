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

from ..command import render_step_commands
from ..compat import BaseOperator
from ..manifest import CodePackage, FlowManifest, StepSpec
from ..runtime import resolve_invocation, split_count_result
from ..settings import get_settings
from .context import task_ref_from_context

RESULT_FILE = "metaflow-airflow-result.json"


class MetaflowLocalOperator(BaseOperator):
    """Runs one Metaflow step as a local process; a foreach step returns its split indexes."""

    ui_color = "#c7e3f4"

    def __init__(self, *, manifest: FlowManifest, step: StepSpec, **kwargs: Any) -> None:
        super().__init__(task_id=step.name, **kwargs)
        self.manifest = manifest
        self.step = step

    def execute(self, context: Any) -> list[int] | None:
        ref = task_ref_from_context(context, self.step)
        invocation = resolve_invocation(self.manifest, self.step, ref)
        self.log.info("Metaflow task %s (attempt %s)", invocation.pathspec, invocation.retry_count)
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
            if self.step.type == "foreach":
                with open(result_file, encoding="utf-8") as result:
                    return split_count_result(json.load(result))
        return None

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
            raise RuntimeError(f"Metaflow command exited with code {code}: {argv[1]} {argv[-1]}")


def unpack_code_package(manifest: FlowManifest, workdir: str) -> str:
    """Fetch the code package from the flow's datastore and unpack it into ``workdir``."""
    package = manifest.code_package
    options = _package_storage_options(package.url, manifest.metaflow.env)
    root = os.path.join(workdir, "code")
    with fsspec.open(package.url, "rb", **options) as blob, tarfile.open(fileobj=blob, mode="r:gz") as tar:
        tar.extractall(root, filter="data")
    return root


def _package_storage_options(url: str, metaflow_env: Mapping[str, str]) -> dict[str, Any]:
    endpoint = metaflow_env.get("METAFLOW_S3_ENDPOINT_URL")
    if url.startswith("s3://") and endpoint:
        return {"client_kwargs": {"endpoint_url": endpoint}}
    return {}


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
