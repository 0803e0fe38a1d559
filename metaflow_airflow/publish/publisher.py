"""Publish a flow: compile it, upload its code package, write its manifest.

:func:`publish_flow` runs the flow file in a child process under Metaflow's own CLI (see
``flow_process``), exactly as ``python flow.py ... airflow-manifest compile`` would, the command
of the Metaflow extension this package ships: that resolves decorators, configs and the
datastore the Metaflow way, and keeps the user's module out of the caller's process.
``metaflow-airflow publish`` and the flow command ``airflow-manifest create`` both come here.
The child compiles and uploads; this process writes the manifest, having checked that the
store can be written while the child started (the store client's import and first request
overlap Metaflow's). Between compiling and uploading, the child waits for this process to
agree: nothing is uploaded for a store that cannot be written or a DAG id that another flow
owns.
"""

from __future__ import annotations

import functools
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict

from metaflow_airflow.errors import CompileError, PublishError, SigningKeyError, StoreError
from metaflow_airflow.manifest.signing import load_signing_key, signature_path
from metaflow_airflow.publish.support import refuse_unsupported_decorators

if TYPE_CHECKING:
    from metaflow_airflow.store.manifest_store import ManifestStore

# The flow command of the shipped Metaflow extension (metaflow_extensions/airflow_manifest), and
# its hidden subcommand that the flow process runs.
FLOW_COMMAND = "airflow-manifest"
COMPILE_COMMAND = "compile"
# The flow process reports what it is doing on stderr lines that start with this.
PROGRESS_MARK = "::metaflow-airflow-progress:: "
# ... and, once compiled, what it is about to publish (JSON: dag_id, flow_name, flow_file),
# then waits for GO_AHEAD on its stdin before it uploads anything.
COMPILED_MARK = "::metaflow-airflow-compiled:: "
GO_AHEAD = "upload"


class CompileRequest(BaseModel):
    """How to compile the flow: what the flow process gets, as JSON on its command line."""

    model_config = ConfigDict(extra="forbid", frozen=True)

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


class PublishRequest(CompileRequest):
    """What ``metaflow-airflow publish`` was asked to do: how to compile, and where to."""

    store: str
    storage_options: dict[str, Any] = {}
    replace: bool = False  # publish even if the DAG id belongs to another flow

    def compile_request(self) -> CompileRequest:
        """All but the store: its options may hold credentials, which stay in this process."""
        return CompileRequest(**self.model_dump(exclude={"store", "storage_options", "replace"}))


class PublishResult(BaseModel):
    """What a publish produced."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    dag_id: str
    manifest_url: str
    signature_url: str | None = None  # set when a signing key is configured
    flow_name: str
    code_package_url: str
    warnings: tuple[str, ...] = ()
    unchanged_version: str | None = None  # set when the store had this content already


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
    try:
        signing_key = load_signing_key()  # a misconfigured key fails before anything is uploaded
    except SigningKeyError as exc:
        raise PublishError(str(exc)) from exc
    with tempfile.TemporaryDirectory(prefix="metaflow-airflow-") as tmp:
        result_file = Path(tmp, "result.json")
        argv = [
            sys.executable,
            "-m",
            "metaflow_airflow.publish.flow_process",
            str(flow_path),
            "--quiet",
            *metaflow_options,
            FLOW_COMMAND,
            COMPILE_COMMAND,
            "--request",
            request.compile_request().model_dump_json(),
            "--result",
            str(result_file),
        ]
        with _flow_process(argv, flow_path.parent, env) as process:
            store = _open_store(request, process)
            approve = functools.partial(_approve, store, request.replace)
            returncode, stderr = _follow(process, progress, approve)
        outcome = json.loads(result_file.read_text()) if result_file.exists() else None
    if outcome and "error" in outcome:
        error_class = CompileError if outcome.get("kind") == "compile" else PublishError
        raise error_class(outcome["error"])
    if returncode != 0 or not outcome:
        if f"No such command '{FLOW_COMMAND}'" in stderr:
            raise PublishError(
                f"Metaflow did not load the {FLOW_COMMAND} extension that metaflow-airflow "
                "ships (metaflow_extensions/airflow_manifest): install metaflow-airflow in the "
                "Python that runs the flow, and check METAFLOW_EXTENSIONS_SEARCH_DIRS"
            )
        raise PublishError(f"{flow_path.name}: {_last_error_line(stderr)}")
    from metaflow_airflow.manifest.models import (
        CompileOutcome,  # imported by then: _open_store imports the store
    )

    compiled = CompileOutcome.model_validate(outcome)
    manifest = compiled.manifest
    try:
        unchanged = store.unchanged_version(manifest, signed=signing_key is not None)
        if unchanged is None:
            if progress is not None:
                progress(f"writing manifest {store.manifest_url(manifest.dag_id)}...")
            store.write(manifest, signing_key)  # signed before that version is current
    except StoreError as exc:
        raise PublishError(str(exc)) from exc
    url = store.manifest_url(manifest.dag_id)
    return PublishResult(
        dag_id=manifest.dag_id,
        manifest_url=url,
        unchanged_version=unchanged,
        signature_url=signature_path(url) if signing_key else None,
        flow_name=manifest.flow_name,
        code_package_url=manifest.code_package.url,
        warnings=compiled.warnings,
    )


def _flow_process(
    argv: Sequence[str], cwd: Path, env: Mapping[str, str] | None
) -> subprocess.Popen[str]:
    return subprocess.Popen(
        list(argv),
        cwd=cwd,
        env=None if env is None else dict(env),
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


def _open_store(request: PublishRequest, process: subprocess.Popen[str]) -> ManifestStore:
    """The store, connected while the flow process starts; a store that cannot be opened
    stops the flow process, before it uploads anything if it is still starting. The store's
    client and the manifest models are imported here, after the flow process started."""
    from metaflow_airflow.store.manifest_store import ManifestStore

    try:
        store = ManifestStore(request.store, request.storage_options)
        store.check_writable()
    except StoreError as exc:
        process.kill()
        raise PublishError(str(exc)) from exc
    return store


def _approve(store: ManifestStore, replace: bool, compiled: Mapping[str, Any]) -> None:
    """What the flow process compiled may be uploaded: its datastore answers, and the DAG id
    is this flow's."""
    _check_datastore(compiled)
    _check_owner(store, replace, compiled)


def _check_datastore(compiled: Mapping[str, Any]) -> None:
    """One request to the Metaflow datastore the code package goes to, with few retries: an
    unreachable one fails the publish now, not after Metaflow's own retries (minutes)."""
    import fsspec

    from metaflow_airflow.store.clouds.registry import cloud_for_datastore

    kind, root = compiled.get("datastore", "local"), str(compiled.get("datastore_root", ""))
    if kind == "local" or not root:
        return
    cloud = cloud_for_datastore(kind)
    url, options = cloud.package_location(root.removeprefix("az://"), compiled["datastore_env"])
    try:
        fs, path = fsspec.core.url_to_fs(url, **cloud.probe_options(options))
        fs.info(path)
    except FileNotFoundError:
        return  # a first publish: nothing under the root yet
    except Exception as exc:  # the clients' own errors (botocore's...) are no OSError
        if not cloud.probe_conclusive(exc):
            return  # Metaflow's own client provider may hold credentials this probe lacks
        raise PublishError(
            f"cannot reach the Metaflow {kind} datastore {root}: "
            f"{cloud.explain(exc, datastore=True)}"
        ) from exc


def _check_owner(store: ManifestStore, replace: bool, compiled: Mapping[str, Any]) -> None:
    """Refuse to publish over a DAG id whose current manifest is another flow's (another flow
    class, or a flow file of another name), unless asked to ``replace`` it."""
    dag_id = compiled["dag_id"]
    owner = store.current(dag_id)
    if replace or owner is None:
        return
    owner_file = str(owner.get("metaflow", {}).get("flow_file", ""))
    if (owner.get("flow_name"), owner_file) == (compiled["flow_name"], compiled["flow_file"]):
        return
    raise CompileError(
        f"DAG id {dag_id} belongs to flow {owner.get('flow_name')} ({owner_file}), published "
        f"by {owner.get('published_by')} at {owner.get('published_at')}; publishing "
        f"{compiled['flow_name']} ({compiled['flow_file']}) would replace it: choose another "
        "--name, or pass --replace"
    )


def _follow(
    process: subprocess.Popen[str],
    progress: Callable[[str], None] | None,
    approve: Callable[[Mapping[str, Any]], None],
) -> tuple[int, str]:
    """Hand the flow process' progress lines on as they come (packaging and uploading can take
    a while), and let it upload once ``approve`` accepts what it compiled (else it is stopped
    and ``approve``'s error raised); returns its exit code and the rest of its stderr."""
    assert process.stderr is not None and process.stdin is not None
    kept = []
    for line in process.stderr:
        if line.startswith(COMPILED_MARK):
            try:
                approve(json.loads(line[len(COMPILED_MARK) :]))
            except Exception:
                process.kill()
                raise
            process.stdin.write(GO_AHEAD + "\n")
            process.stdin.flush()
        elif not line.startswith(PROGRESS_MARK):
            kept.append(line)
        elif progress is not None:
            progress(line[len(PROGRESS_MARK) :].rstrip("\n"))
    return process.wait(), "".join(kept)


def _last_error_line(stderr: str) -> str:
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    return lines[-1] if lines else "the flow process failed without a message"
