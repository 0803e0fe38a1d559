"""Publish a flow: compile it, upload its code package, write its manifest.

:func:`publish_flow` runs the flow file in a child process under Metaflow's own CLI (see
``flow_process``), exactly as ``python flow.py ...`` would: that resolves decorators, configs
and the datastore the Metaflow way, and keeps the user's module out of the caller's process.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from .errors import CompileError, PublishError
from .support import refuse_unsupported_decorators

PUBLISH_COMMAND = "metaflow-airflow-publish"
# The flow process reports what it is doing on stderr lines that start with this.
PROGRESS_MARK = "::metaflow-airflow-progress:: "


class PublishRequest(BaseModel):
    """What ``metaflow-airflow publish`` was asked to do; handed to the flow process as JSON."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    store: str
    storage_options: dict[str, Any] = {}
    compute: Literal["kubernetes", "local"] = "kubernetes"
    dag_id: str | None = None
    image: str | None = None
    tags: tuple[str, ...] = ()
    max_workers: int | None = None
    pool: str | None = None
    is_paused_upon_creation: bool | None = None
    authorize: str | None = None
    generate_new_token: bool = False
    allow_plaintext_env: bool = False  # accept @environment values that look like credentials


class PublishResult(BaseModel):
    """What a publish produced."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    dag_id: str
    manifest_url: str
    signature_url: str | None = None  # set when a signing key is configured
    flow_name: str
    code_package_url: str
    warnings: tuple[str, ...] = ()


def publish_flow(
    flow_file: str | os.PathLike[str],
    request: PublishRequest,
    *,
    metaflow_options: Sequence[str] = (),
    env: Mapping[str, str] | None = None,
    progress: Callable[[str], None] | None = None,
) -> PublishResult:
    """Publish ``flow_file``; ``metaflow_options`` are top-level Metaflow options such as
    ``--datastore=s3``; ``progress`` receives a line as each phase starts (compiling, packaging
    and uploading, writing the manifest). Raises :class:`CompileError` or :class:`PublishError`
    with one clear line.
    """
    flow_path = Path(flow_file).resolve()
    if not flow_path.is_file():
        raise PublishError(f"flow file not found: {flow_file}")
    refuse_unsupported_decorators(flow_path)
    with tempfile.TemporaryDirectory(prefix="metaflow-airflow-") as tmp:
        result_file = Path(tmp, "result.json")
        argv = [
            sys.executable,
            "-m",
            "metaflow_airflow.flow_process",
            str(flow_path),
            "--quiet",
            *metaflow_options,
            PUBLISH_COMMAND,
            "--request",
            request.model_dump_json(),
            "--result",
            str(result_file),
        ]
        returncode, stderr = _run_flow_process(argv, flow_path.parent, env, progress)
        outcome = json.loads(result_file.read_text()) if result_file.exists() else None
    if outcome and "error" in outcome:
        error_class = CompileError if outcome.get("kind") == "compile" else PublishError
        raise error_class(outcome["error"])
    if returncode != 0 or not outcome:
        raise PublishError(f"{flow_path.name}: {_last_error_line(stderr)}")
    return PublishResult.model_validate(outcome)


def _run_flow_process(
    argv: Sequence[str],
    cwd: Path,
    env: Mapping[str, str] | None,
    progress: Callable[[str], None] | None,
) -> tuple[int, str]:
    """Run the flow process, handing its progress lines on as they come (packaging and
    uploading can take a while); returns its exit code and the rest of its stderr."""
    process = subprocess.Popen(
        list(argv),
        cwd=cwd,
        env=None if env is None else dict(env),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stderr is not None
    kept = []
    with process:
        for line in process.stderr:
            if not line.startswith(PROGRESS_MARK):
                kept.append(line)
            elif progress is not None:
                progress(line[len(PROGRESS_MARK):].rstrip("\n"))
    return process.returncode, "".join(kept)


def _last_error_line(stderr: str) -> str:
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    return lines[-1] if lines else "the flow process failed without a message"
