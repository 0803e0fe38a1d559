"""Hostile parameter values: random strings (shell metacharacters, quotes, newlines, unicode,
Jinja, ``$()``, backticks) as a DAG run's conf reach the step verbatim; nothing runs or renders.

A DAG run per value would take hours, so per generated conf the test renders the start step's
real commands — :func:`runtime.resolve_invocation` and :func:`command.render_step_commands` for
local compute, the real operator's ``prepare`` and ``build_pod_request_obj`` (its ``bash -c``
script and container environment) for Kubernetes compute — and executes them exactly as built,
with a stand-in ``python`` first on PATH: a perl script that records its argv and the
``METAFLOW_INIT_*`` environment and runs nothing. Every value must arrive byte for byte and the
marker file that the hostile strings try to create must never appear. A few examples then run
Metaflow's real ``init``, and the values are read back from the Metaflow datastore.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import pytest
from conftest import FAKE_KUBE_CONFIG
from helpers import publisher
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from metaflow_airflow import ManifestStore
from metaflow_airflow.airflow.compute.kubernetes import XCOM_RETURN_FILE
from metaflow_airflow.airflow.compute.local import process_environment, unpack_code_package
from metaflow_airflow.manifest.models import FlowManifest, KubernetesCompute
from metaflow_airflow.runtime.commands import render_step_commands
from metaflow_airflow.runtime.invocation import TaskRef, resolve_invocation

pytestmark = pytest.mark.timeout(300)

MARKER = Path(tempfile.gettempdir()) / f"metaflow-airflow-pwned-{os.getpid()}"
PIECES = [
    f"$(touch {MARKER})", f"`touch {MARKER}`", f"; touch {MARKER}", f"| touch {MARKER}",
    f"&& touch {MARKER} #", f"\ntouch {MARKER}\n", f"' ; touch {MARKER} ; '",
    f'" ; touch {MARKER} ; "', f"$'\\x41' > {MARKER}", "{{ ds }}", "{{ ''.__class__ }}",
    "{% raw %}", "{# #}", "${HOME}", "$HOME", "$1", "$@", "%s", "%(x)s", "\\", "\\n", "'", '"',
    "\t", "\r\n", "\n", " ", "-", "--", "--run-id x", "=", "*", "?", "~", "!", "#", "<", ">", "&",
    "()", "{}", "[]", "✓", "日本語", "🙂", "\u202e", "\u00a0", "\x1b[31m", "\x7f", "é",
]
# Any character a process environment can hold (not NUL, not a lone surrogate).
CHARACTERS = st.characters(blacklist_characters="\x00", blacklist_categories=("Cs",))
hostile = st.lists(
    st.one_of(st.sampled_from(PIECES), st.text(CHARACTERS, max_size=12)), max_size=8
).map("".join)
confs = st.fixed_dictionaries(
    {
        "text": hostile,
        "config": st.lists(hostile, max_size=6),  # a JSON parameter: more strings per run
        "count": st.integers(-(2**31), 2**31),
    }
)

# Stand-in for `python`: writes its argv and METAFLOW_INIT_* variables as netstrings into a new
# file in $MFA_RECORD_DIR; executes nothing.
PLAIN_CONF = {"text": "plain", "config": [], "count": 1}
STAND_IN = r"""#!/usr/bin/perl
my @env = map { "$_=$ENV{$_}" } sort grep { /^METAFLOW_INIT_/ } keys %ENV;
open(my $out, '>:raw', "$ENV{MFA_RECORD_DIR}/$$") or die "cannot record: $!";
print $out join('', map { length($_) . ':' . $_ . ',' } scalar(@ARGV), @ARGV, @env);
"""


def netstrings(data: bytes) -> list[str]:
    items = []
    while data:
        length, _, rest = data.partition(b":")
        size = int(length)
        items.append(os.fsdecode(rest[:size]))
        assert rest[size : size + 1] == b","
        data = rest[size + 1 :]
    return items


def recorded(folder: Path) -> list[tuple[tuple[str, ...], dict[str, str]]]:
    """Each stand-in run: its argv (without the program) and METAFLOW_INIT_* variables."""
    runs = []
    for path in folder.iterdir():
        count, *rest = netstrings(path.read_bytes())
        argv, env = rest[: int(count)], rest[int(count) :]
        runs.append((tuple(argv), dict(item.split("=", 1) for item in env)))
        path.unlink()
    return sorted(runs)


@pytest.fixture(scope="module")
def manifest(tmp_path_factory: pytest.TempPathFactory) -> FlowManifest:
    store = f"file://{tmp_path_factory.mktemp('hostile') / 'store'}"
    publisher(store)("parameters_flow.py")
    return ManifestStore(store).read("ParametersFlow")


@pytest.fixture(scope="module")
def stand_in(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("bin")
    python = folder / "python"
    python.write_text(STAND_IN)
    python.chmod(0o755)
    return folder


@pytest.fixture(scope="module")
def kubernetes_start(manifest: FlowManifest) -> Any:
    """The start operator of the same flow published for Kubernetes compute (its container
    script has no setup: the local datastore's; a cloud one adds fixed download commands)."""
    from metaflow_airflow.airflow.dag.factory import build_dag

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(
            "AIRFLOW_CONN_KUBERNETES_DEFAULT",
            json.dumps({"conn_type": "kubernetes", "extra": {"kube_config": FAKE_KUBE_CONFIG}}),
        )
        on_kubernetes = manifest.model_copy(update={"compute": KubernetesCompute()})
        op = build_dag(on_kubernetes).get_task("start")
        op.build_pod_request_obj()  # loads the Kubernetes client configuration once
        yield on_kubernetes, op


def task_ref(manifest: FlowManifest, conf: dict[str, Any], n: int) -> TaskRef:
    return TaskRef(
        dag_id=manifest.dag_id, airflow_run_id=f"manual__hostile-{n}", params=dict(conf)
    )


def expected_init_env(conf: dict[str, Any]) -> dict[str, str]:
    return {
        "METAFLOW_INIT_TEXT": conf["text"],
        "METAFLOW_INIT_CONFIG": json.dumps(conf["config"]),
        "METAFLOW_INIT_COUNT": str(conf["count"]),
        "METAFLOW_INIT_RATIO": "0.5",
        "METAFLOW_INIT_LOUD": "false",
    }


@pytest.fixture(autouse=True)
def no_marker() -> None:
    MARKER.unlink(missing_ok=True)
    yield
    assert not MARKER.exists(), "a parameter value was executed by a shell"


def test_hostile_values_reach_the_step_verbatim(
    manifest: FlowManifest, stand_in: Path, kubernetes_start, tmp_path: Path
) -> None:
    on_kubernetes, op = kubernetes_start
    step = manifest.steps_by_name["start"]
    records = tmp_path / "records"
    records.mkdir()
    path = os.pathsep.join([str(stand_in), "/usr/bin", "/bin"])
    examples = iter(range(10**9))

    @settings(
        max_examples=400, deadline=None, database=None, suppress_health_check=list(HealthCheck)
    )
    @given(conf=confs)
    def check(conf: dict[str, Any]) -> None:
        n = next(examples)
        ref = task_ref(manifest, conf, n)
        expected_env = expected_init_env(conf)

        # Local compute: the argv lists and environment, run as processes (no shell).
        invocation = resolve_invocation(manifest, step, ref)
        commands = render_step_commands(
            manifest, step, invocation, python=str(stand_in / "python"), result_file="unused"
        )
        env = {**process_environment(commands.env, manifest.code_package, str(tmp_path)),
               "MFA_RECORD_DIR": str(records)}
        for argv in commands.argvs:
            subprocess.run(argv, env=env, cwd=tmp_path, check=True)
        assert recorded(records) == sorted((argv[1:], expected_env) for argv in commands.argvs)

        # Kubernetes compute: the pod's `bash -c` script with exactly the container's env;
        # the script is the same whatever the values (they are in the environment only).
        op.prepare(task_ref(manifest, PLAIN_CONF, n))
        plain_script = op.build_pod_request_obj().spec.containers[0].args[0]
        op.prepare(ref)
        container = op.build_pod_request_obj().spec.containers[0]
        pod_env = {e.name: e.value for e in container.env}
        assert all(e.value_from is None for e in container.env)
        script = container.args[0]
        assert script == plain_script
        subprocess.run(
            [*container.command, *container.args],
            env={**pod_env, "PATH": path, "MFA_RECORD_DIR": str(records)},
            cwd=tmp_path,
            check=True,
        )
        rendered = render_step_commands(
            on_kubernetes, step, invocation, python="python", result_file=XCOM_RETURN_FILE
        )
        assert recorded(records) == sorted((argv[1:], expected_env) for argv in rendered.argvs)
        assert not MARKER.exists()

    check()


def test_hostile_values_read_back_from_metaflow(manifest: FlowManifest, tmp_path: Path) -> None:
    """The real Metaflow ``init`` of the start step stores each value as the Parameter."""
    from metaflow import Task, namespace

    namespace(None)
    step = manifest.steps_by_name["start"]
    root = unpack_code_package(manifest, str(tmp_path))
    examples = iter(range(10**9))

    @settings(
        max_examples=20, deadline=None, database=None, suppress_health_check=list(HealthCheck)
    )
    @given(conf=confs)
    def check(conf: dict[str, Any]) -> None:
        ref = task_ref(manifest, conf, -next(examples) - 1)
        invocation = resolve_invocation(manifest, step, ref)
        commands = render_step_commands(
            manifest, step, invocation, python=sys.executable, result_file="unused"
        )
        init = commands.argvs[0]
        assert "init" in init
        env = process_environment(commands.env, manifest.code_package, root)
        completed = subprocess.run(init, env=env, cwd=root, capture_output=True, text=True)
        assert completed.returncode == 0, completed.stderr
        task = Task(f"{manifest.flow_name}/{invocation.run_id}/_parameters/"
                    f"{invocation.parameters_task_id}")
        assert task["text"].data == conf["text"]
        assert task["config"].data == conf["config"]
        assert task["count"].data == conf["count"]
        assert not MARKER.exists()

    check()
    shutil.rmtree(root)
