"""Local compute: each step runs as a process on the Airflow worker, in a fresh unpack of the
code package (as a pod would), with its logs kept the Metaflow way and the split count handed
back through a private file."""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import tarfile
import tempfile
import threading
import uuid
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
from metaflow_airflow.airflow.compute.run_version import stay_on_run_version
from metaflow_airflow.airflow.ui import MetaflowUILink, record_metaflow_ids
from metaflow_airflow.manifest.models import CodePackage, FlowManifest
from metaflow_airflow.runtime.commands import (
    MFLOG_SAVE,
    MFLOG_TEE,
    REPORTING_STEP_TYPES,
    log_env,
    render_step_commands,
)
from metaflow_airflow.settings import get_settings
from metaflow_airflow.store.clouds.registry import cloud_for_datastore

RESULT_FILE = "metaflow-airflow-result.json"


class MetaflowLocalOperator(BoundStep, BaseOperator, SkipMixin):
    """Runs one Metaflow step as a local process; a foreach step returns its split indexes.
    Without an ``__init__`` of its own, as :class:`~.kubernetes.MetaflowKubernetesOperator`."""

    ui_color = "#c7e3f4"
    operator_extra_links = (MetaflowUILink(),)
    _capture: MetaflowLogCapture | None = None

    def execute(self, context: Any) -> list[int] | None:
        stay_on_run_version(self, context)
        ref = task_ref_from_context(context, self.manifest, self.step)
        invocation = resolve_or_fail(self.manifest, self.step, ref)
        self.log.info("Metaflow task %s (attempt %s)", invocation.pathspec, invocation.retry_count)
        record_metaflow_ids(context, invocation)
        python = get_settings().local_python or sys.executable
        with tempfile.TemporaryDirectory(prefix="metaflow-airflow-") as workdir:
            root = unpack_code_package(self.manifest, get_settings().cache_dir / "code")
            result_file = os.path.join(workdir, RESULT_FILE)
            commands = render_step_commands(
                self.manifest, self.step, invocation, python=python, result_file=result_file
            )
            env = process_environment(commands.env, self.manifest.code_package, root)
            env.update(log_env(self.manifest, invocation, workdir))
            with MetaflowLogCapture(
                self.step.name, python, cwd=root, env=env, log=self.log
            ) as capture:
                self._capture = capture
                for argv in commands.argvs:
                    capture.run(argv)
            result = None
            if self.step.type in REPORTING_STEP_TYPES:
                with open(result_file, encoding="utf-8") as report:
                    result = json.load(report)
        return hand_back(self, context, self.step, invocation, result)

    def on_kill(self) -> None:
        """Airflow stops this task (its run marked failed or terminated, the task cleared, a
        timeout): the step's processes stop with it. They run in a session of their own, so
        Airflow's signal to the task process never reaches them."""
        if self._capture is not None:
            self._capture.kill()


class MetaflowLogCapture:
    """Runs a task's commands and keeps their logs the way Metaflow does (``metaflow.mflog``,
    as in a pod): stdout and stderr each through Metaflow's tee into the task's log files,
    and from the tees into the Airflow task log; on leaving, the files are saved to the task's
    datastore, also when a command failed or timed out, so ``Task.stdout`` and ``logs`` show
    them. A command that fails, times out or is killed takes its whole process group along."""

    def __init__(
        self, step_name: str, python: str, *, cwd: str, env: Mapping[str, str], log: Any
    ) -> None:
        self.step_name, self.python, self.cwd, self.env = step_name, python, cwd, dict(env)
        self.log = log
        self._tees: list[subprocess.Popen[bytes]] = []
        self._reader: threading.Thread | None = None
        self._running: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> MetaflowLogCapture:
        read_end, write_end = os.pipe()
        for variable in ("MFLOG_STDOUT", "MFLOG_STDERR"):
            self._tees.append(
                subprocess.Popen(
                    [self.python, *MFLOG_TEE, self.env[variable]],
                    cwd=self.cwd,
                    env=self.env,
                    stdin=subprocess.PIPE,
                    stdout=write_end,
                    stderr=write_end,
                )
            )
        os.close(write_end)  # the tees hold it: the reader sees the end when both have exited
        self._reader = threading.Thread(target=self._forward, args=(read_end,), daemon=True)
        self._reader.start()
        return self

    def _forward(self, read_end: int) -> None:
        with os.fdopen(read_end, encoding="utf-8", errors="replace") as output:
            for line in output:
                self.log.info("%s", line.rstrip("\n"))

    def run(self, argv: Sequence[str]) -> None:
        stdout_tee, stderr_tee = self._tees
        process = subprocess.Popen(
            list(argv),
            cwd=self.cwd,
            env=self.env,
            stdout=stdout_tee.stdin,
            stderr=stderr_tee.stdin,
            start_new_session=True,
        )
        self._running = process
        try:
            code = process.wait()
        finally:
            self.kill()  # interrupted (Airflow's timeout, a signal): the whole group goes
            process.wait()
        if code != 0:  # as Metaflow's runtime ends a failed task's stderr
            failed = (
                b"Task failed with a segmentation fault.\n" if code == -11 else b"Task failed.\n"
            )
            assert stderr_tee.stdin is not None
            stderr_tee.stdin.write(failed)
            stderr_tee.stdin.flush()
            raise RuntimeError(f"Metaflow step {self.step_name} failed with exit code {code}")

    def kill(self) -> None:
        """Stop the running command's whole process group, if it still runs; safe to call from a
        signal handler while :meth:`run` waits."""
        process = self._running
        if process is not None and process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)

    def __exit__(self, *exc_info: object) -> None:
        for tee in self._tees:
            assert tee.stdin is not None
            tee.stdin.close()
        for tee in self._tees:
            try:
                tee.wait(timeout=30)
            except subprocess.TimeoutExpired:  # a child of the step kept the stream open
                tee.kill()
                tee.wait()
        if self._reader is not None:
            self._reader.join(timeout=5)
        saved = subprocess.run(
            [self.python, *MFLOG_SAVE],
            cwd=self.cwd,
            env=self.env,
            capture_output=True,
            text=True,
        )
        if "upload_success" not in saved.stdout:
            self.log.warning("Metaflow could not save this task's logs: %s", saved.stderr.strip())


def unpack_code_package(manifest: FlowManifest, folder: str | os.PathLike[str]) -> str:
    """Fetch the code package from the flow's datastore (with options that reach it where the
    manifest's Metaflow configuration points: an S3 endpoint, a GCS emulator, an Azure account;
    credentials are the worker's own) and unpack it once into ``folder/<sha>``.

    Every task of the package runs in that one folder, as all tasks of ``python flow.py run``
    share the flow's folder and every pod has ``/metaflow``: the code paths Metaflow records
    (the tracebacks ``@catch`` stores, which a foreach join merges) are the same in all tasks."""
    package = manifest.code_package
    root = os.path.join(folder, package.sha)
    if os.path.isdir(root):
        return root
    runtime = manifest.metaflow
    cloud = cloud_for_datastore(runtime.datastore)
    url, options = cloud.package_location(package.url, runtime.env)
    with fsspec.open(url, "rb", **options) as source:
        blob = source.read()
    if hashlib.sha1(blob).hexdigest() != package.sha:  # noqa: S324 (Metaflow's own digest)
        raise RuntimeError(f"the code package at {url} is not the one published (sha1 differs)")
    unpacking = f"{root}.{uuid.uuid4().hex}.tmp"
    try:
        with tarfile.open(fileobj=io.BytesIO(blob), mode="r:gz") as tar:
            tar.extractall(unpacking, filter="data")
        os.rename(unpacking, root)  # atomic; another task may have won meanwhile
    except OSError:
        if not os.path.isdir(root):
            raise
    finally:
        shutil.rmtree(unpacking, ignore_errors=True)
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
