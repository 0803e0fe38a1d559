"""The pods that Kubernetes compute submits, for every example flow published to a real S3
(moto): image, command, ids, input paths, environment, resources and XCom sidecar. Then the
decisive check: the start and end pods of ParametersFlow run, exactly as built, as local
processes (no cluster can run here), and the Metaflow run they make holds the parameters verbatim.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from pods import AIRFLOW_RUN_ID, FOREACH_SPLITS, prepared_pod

from metaflow_airflow.manifest.models import FlowManifest
from metaflow_airflow.runtime.ids import metaflow_run_id, metaflow_task_id

pytestmark = pytest.mark.timeout(300)

IMAGE = "python:3.11"
XCOM_SIDECAR = "airflow-xcom-sidecar"

HOSTILE_TEXT = 'it\'s $(touch /tmp/pwned) `id`; | & "$HOME" \\ {{ ds }} \n\t✓'


# --- what each example's tasks must look like ------------------------------------------------

# Per flow: Airflow params for the run, the expected METAFLOW_INIT_* values, and per step the
# map index of the task built and the (step, map index) of the tasks its --input-paths name.
EXAMPLES: dict[str, dict[str, Any]] = {
    "parameters_flow.py": {
        "params": {
            "text": HOSTILE_TEXT,
            "count": 7,
            "ratio": 2.25,
            "loud": True,
            "config": {"nested": [1, {"b": None}], "quote": "'\"$HOME"},
        },
        "init_env": {
            "METAFLOW_INIT_TEXT": HOSTILE_TEXT,
            "METAFLOW_INIT_COUNT": "7",
            "METAFLOW_INIT_RATIO": "2.25",
            "METAFLOW_INIT_LOUD": "true",
            "METAFLOW_INIT_CONFIG": json.dumps({"nested": [1, {"b": None}], "quote": "'\"$HOME"}),
        },
        "steps": {
            "start": (-1, None),
            "end": (-1, [("start", -1)]),
        },
        "foreach": set(),
        "split_index": set(),
    },
    "branch_flow.py": {
        "params": {},
        "init_env": {},
        "steps": {
            "start": (-1, None),
            "sum_them": (-1, [("start", -1)]),
            "multiply_them": (-1, [("start", -1)]),
            "join": (-1, [("sum_them", -1), ("multiply_them", -1)]),
            "end": (-1, [("join", -1)]),
        },
        "foreach": set(),
        "split_index": set(),
    },
    "foreach_flow.py": {
        "params": {"offset": 7},
        "init_env": {"METAFLOW_INIT_OFFSET": "7"},
        "steps": {
            "start": (-1, None),
            "square": (2, [("start", -1)]),
            "shift": (2, [("square", 2)]),
            "join": (-1, [("shift", i) for i in range(FOREACH_SPLITS)]),
            "end": (-1, [("join", -1)]),
        },
        "foreach": {"start"},
        "split_index": {"square"},
    },
}


def container_env(pod: Any) -> dict[str, str]:
    container = pod.spec.containers[0]
    assert all(e.value_from is None for e in container.env)
    return {e.name: e.value for e in container.env}


def task_id(manifest: FlowManifest, step: str, map_index: int) -> str:
    return metaflow_task_id(
        AIRFLOW_RUN_ID,
        step,
        manifest.dag_id,
        map_index,
        flow_has_foreach=manifest.contains_foreach,
    )


def input_paths_in(script: str, step: str) -> list[str]:
    """The --input-paths of the ``step`` command in a pod script, expanded as Metaflow does."""
    from metaflow.util import decompress_list

    match = re.search(rf" step {step} .*?--input-paths ([^\s)]+)", script)
    assert match, f"no step command for {step!r} in {script!r}"
    return decompress_list(shlex.split(match.group(1))[0])


@pytest.mark.parametrize("example", sorted(EXAMPLES))
def test_pods_of_every_step(example: str, publish_to_s3, datastore_root: str) -> None:
    spec = EXAMPLES[example]
    manifest, dag = publish_to_s3(example)
    run_id = metaflow_run_id(AIRFLOW_RUN_ID, manifest.dag_id)
    assert sorted(dag.task_ids) == sorted(spec["steps"])
    assert manifest.metaflow.datastore == "s3"
    assert manifest.code_package.url.startswith(datastore_root + "/")

    for step, (map_index, parents) in spec["steps"].items():
        op, pod = prepared_pod(manifest, dag, step, map_index=map_index, params=spec["params"])
        container = pod.spec.containers[0]
        script = container.args[0]
        env = container_env(pod)
        my_task = task_id(manifest, step, map_index)

        assert type(op).__name__ == "MetaflowKubernetesOperator"
        assert container.image == IMAGE
        assert container.command == ["bash", "-c"]
        assert len(container.args) == 1
        assert pod.metadata.namespace == "default"
        assert pod.metadata.annotations["metaflow/flow_name"] == manifest.flow_name
        assert pod.metadata.annotations["metaflow/step_name"] == step
        assert pod.spec.restart_policy == "Never"

        # the step command, with Metaflow's Airflow ids
        step_argv = [
            "step",
            step,
            "--run-id",
            run_id,
            "--task-id",
            my_task,
            "--retry-count",
            "0",
            "--max-user-code-retries",
            "0",
            "--input-paths",
        ]
        assert f" {shlex.join(step_argv)} " in script
        assert f"--datastore=s3 --datastore-root={datastore_root} " in script
        if step == "start":
            params_task = f"{my_task}-params"
            init = ["init", "--run-id", run_id, "--task-id", params_task]
            assert f" {shlex.join(init)}" in script
            assert input_paths_in(script, step) == [f"{run_id}/_parameters/{params_task}"]
        else:
            expected = [f"{run_id}/{p}/{task_id(manifest, p, i)}" for p, i in parents]
            found = input_paths_in(script, step)
            if manifest.steps_by_name[step].joins_foreach:
                assert found == expected  # split order matters to `inputs`
            else:
                assert sorted(found) == sorted(expected)
            assert " init " not in script
        # only the first step of a foreach body takes its split index
        assert ("--split-index" in script) is (step in spec["split_index"])
        if step in spec["split_index"]:
            assert f" --split-index {map_index}" in script

        # environment: Metaflow configuration, parameter values only for start, log capture
        assert env["METAFLOW_DEFAULT_DATASTORE"] == "s3"
        assert env["METAFLOW_DATASTORE_SYSROOT_S3"] == datastore_root
        assert env["METAFLOW_S3_ENDPOINT_URL"] == os.environ["METAFLOW_S3_ENDPOINT_URL"]
        assert env["METAFLOW_USER"] == "tester"
        assert env["MF_PATHSPEC"] == f"{manifest.flow_name}/{run_id}/{step}/{my_task}"
        assert env["MF_DATASTORE"] == "s3"
        assert env["MF_DATASTORE_ROOT"] == datastore_root
        assert env["MF_ATTEMPT"] == "0"
        init_env = {k: v for k, v in env.items() if k.startswith("METAFLOW_INIT_")}
        assert init_env == (spec["init_env"] if step == "start" else {})
        for value in spec["init_env"].values():
            if len(value) > 8:  # values are data in the environment, never shell text
                assert value not in script

        # resources
        assert container.resources.requests == {
            "cpu": "1",
            "memory": "4096M",
            "ephemeral-storage": "10240M",
        }
        assert not container.resources.limits

        # XCom: only a foreach step hands back its split count, through the sidecar
        names = [c.name for c in pod.spec.containers]
        is_foreach = step in spec["foreach"]
        assert (manifest.steps_by_name[step].type == "foreach") is is_foreach
        assert op.do_xcom_push is is_foreach
        assert (XCOM_SIDECAR in names) is is_foreach
        assert ("/airflow/xcom/return.json" in script) is is_foreach
        if not is_foreach:
            assert names == ["base"]


# --- the pod's command, run for real ----------------------------------------------------------


def run_pod_locally(pod: Any, workdir: Path, endpoint: str) -> subprocess.CompletedProcess:
    """Run the pod's main container command with exactly its environment, plus only what a
    local process needs in place of the image: PATH (the venv first, so ``python`` is the venv's
    interpreter, as it is the image's in the pod), HOME, the S3 credentials (a pod gets them
    from its service account or a secret) and a private folder for the log files."""
    container = pod.spec.containers[0]
    env = container_env(pod)
    venv_bin = str(Path(sys.executable).parent)
    env.update(
        {
            "PATH": os.pathsep.join([venv_bin, "/usr/local/bin", "/usr/bin", "/bin"]),
            "HOME": str(workdir),
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "us-east-1",
            # Metaflow's bootstrap pip-installs boto3 and requests into the image's Python; the
            # venv already has both, and installing would touch the venv and need the network.
            "METAFLOW_SKIP_INSTALL_DEPENDENCIES": "1",
        }
    )
    env.setdefault("METAFLOW_S3_ENDPOINT_URL", endpoint)
    # A pod's /tmp is its own; on this machine /tmp/metaflow-logs is shared by every run, and
    # the log files are appended to, so each "pod" gets a private folder for its two log files.
    workdir.mkdir(parents=True, exist_ok=False)
    logs = workdir.parent / f"{workdir.name}-logs"
    logs.mkdir()
    assert Path(env["MFLOG_STDOUT"]).parent == Path(env["MFLOG_STDERR"]).parent
    env["MFLOG_STDOUT"] = str(logs / Path(env["MFLOG_STDOUT"]).name)
    env["MFLOG_STDERR"] = str(logs / Path(env["MFLOG_STDERR"]).name)
    return subprocess.run(
        [*container.command, *container.args],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )


CLIENT_SCRIPT = """\
import json, sys
from metaflow import Task, metadata, namespace
metadata("local@" + sys.argv[1])
namespace(None)
task = Task(sys.argv[2])
print(json.dumps({
    "finished": task.finished,
    "successful": task.successful,
    "artifacts": {a.id: a.data for a in task if a.id in sys.argv[3:]},
    "stdout": task.stdout,
}, default=repr))
"""


def read_task(
    pathspec: str, metadata_dir: Path, artifacts: list[str], root: str, endpoint: str
) -> dict:
    """A task of the run through the Metaflow Client, in a fresh process configured for the S3
    datastore and the local metadata the pod wrote (under ``metadata_dir``/.metaflow)."""
    env = {
        "PATH": os.environ["PATH"],
        "HOME": str(metadata_dir),
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "METAFLOW_DEFAULT_DATASTORE": "s3",
        "METAFLOW_DATASTORE_SYSROOT_S3": root,
        "METAFLOW_S3_ENDPOINT_URL": endpoint,
        "METAFLOW_DEFAULT_METADATA": "local",
        "METAFLOW_USER": "tester",
    }
    completed = subprocess.run(
        [sys.executable, "-c", CLIENT_SCRIPT, str(metadata_dir), pathspec, *artifacts],
        cwd=metadata_dir,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert completed.returncode == 0, completed.stderr
    return json.loads(completed.stdout.strip().splitlines()[-1])


def test_start_and_end_pods_run_with_hostile_parameters(
    publish_to_s3, datastore_root: str, s3_bucket_info, tmp_path: Path
) -> None:
    """The decisive test: the exact pod command and environment, run as a process."""
    endpoint = s3_bucket_info.endpoint
    root = datastore_root
    spec = EXAMPLES["parameters_flow.py"]
    pwned = Path("/tmp/pwned")
    existed_before = pwned.exists()
    manifest, dag = publish_to_s3("parameters_flow.py")
    run_id = metaflow_run_id(AIRFLOW_RUN_ID, manifest.dag_id)
    start_task, end_task = task_id(manifest, "start", -1), task_id(manifest, "end", -1)

    _, start_pod = prepared_pod(manifest, dag, "start", params=spec["params"])
    start = run_pod_locally(start_pod, tmp_path / "start-pod", endpoint)

    assert start.returncode == 0, f"stdout:\n{start.stdout}\nstderr:\n{start.stderr}"
    assert "Code package downloaded." in start.stdout
    start_dir = tmp_path / "start-pod" / "metaflow"
    # the pod script fetched the code package from S3: the very blob publish uploaded
    package = (start_dir / "job.tar").read_bytes()
    assert hashlib.sha1(package).hexdigest() == manifest.code_package.sha
    assert s3_bucket_info.fs().cat_file(manifest.code_package.url) == package
    assert (start_dir / manifest.metaflow.flow_file).is_file()
    if not existed_before:
        assert not pwned.exists()

    received = read_task(
        f"{manifest.flow_name}/{run_id}/start/{start_task}",
        start_dir,
        ["text", "count", "ratio", "loud", "config", "greetings", "scaled"],
        root,
        endpoint,
    )
    assert received["successful"] is True
    artifacts = received["artifacts"]
    params = spec["params"]
    assert {k: artifacts[k] for k in params} == params
    assert artifacts["greetings"] == [HOSTILE_TEXT.upper()] * 7
    assert artifacts["scaled"] == 7 * 2.25
    assert "Task is starting." in received["stdout"]  # the logs the pod captured, saved to S3
    assert "received" not in received["stdout"]

    # The end step runs in a pod of its own: a fresh folder, reading start's output from S3.
    _, end_pod = prepared_pod(manifest, dag, "end", params=spec["params"])
    assert "METAFLOW_INIT_TEXT" not in container_env(end_pod)
    end_script = end_pod.spec.containers[0].args[0]
    assert input_paths_in(end_script, "end") == [f"{run_id}/start/{start_task}"]
    end = run_pod_locally(end_pod, tmp_path / "end-pod", endpoint)

    assert end.returncode == 0, f"stdout:\n{end.stdout}\nstderr:\n{end.stderr}"
    end_dir = tmp_path / "end-pod" / "metaflow"
    ended = read_task(
        f"{manifest.flow_name}/{run_id}/end/{end_task}", end_dir, ["received"], root, endpoint
    )
    assert ended["successful"] is True
    assert ended["artifacts"]["received"] == params
    assert f"received {params!r}" in ended["stdout"]  # end's print, through mflog to S3
    if not existed_before:
        assert not pwned.exists()
