"""One publish, registered through the Metaflow extension this package ships
(``metaflow_extensions/airflow_manifest``): ``metaflow-airflow publish`` runs the flow file with
the extension's ``airflow-manifest compile``, as ``python flow.py airflow-manifest create``
does, so both write the same manifest; a wheel carries the extension where Metaflow finds it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from helpers import REPO, SESSION_DIR, flow_path

pytestmark = pytest.mark.timeout(180)
CLI = str(Path(sys.executable).parent / "metaflow-airflow")


def _run(argv: list[str], **env: str) -> subprocess.CompletedProcess[str]:
    """Run from the session's folder: not this checkout, whose packages `python -c` would see."""
    return subprocess.run(  # noqa: PLW1510 (the callers assert the exit code)
        argv, capture_output=True, text=True, env={**os.environ, **env}, cwd=SESSION_DIR,
        timeout=150,
    )  # fmt: skip


def _manifest(store: Path, dag_id: str) -> dict[str, Any]:
    manifest = json.loads((store / "manifests" / f"{dag_id}.json").read_text())
    del manifest["published_at"]
    return manifest


@pytest.mark.parametrize(
    ("flow", "dag_id", "cli_args", "metaflow_args"),
    [
        ("deployer_flow.py", "SameFlow", ["--with", "retry:times=2"], ["--with=retry:times=2"]),
        ("deployment_flow.py", "forecasting.test.nightly.DeploymentFlow", ["--branch", "nightly"],
         ["--branch=nightly"]),
    ],
)  # fmt: skip
def test_the_flow_command_and_publish_write_the_same_manifest(
    tmp_path, flow, dag_id, cli_args, metaflow_args
):
    name = ["--name", "SameFlow"] if dag_id == "SameFlow" else []
    options = ["--compute", "local", "--tag", "team:ml", "--max-workers", "3"]
    published = _run([CLI, "publish", str(flow_path(flow)), "--store",
                      f"file://{tmp_path / 'cli'}", *name, *options, *cli_args])  # fmt: skip
    assert published.returncode == 0, published.stderr
    created = _run([sys.executable, str(flow_path(flow)), "--no-pylint", *metaflow_args,
                    "airflow-manifest", "--store", f"file://{tmp_path / 'command'}", *name,
                    "create", *options])  # fmt: skip
    assert created.returncode == 0, created.stderr

    by_cli = _manifest(tmp_path / "cli", dag_id)
    assert by_cli == _manifest(tmp_path / "command", dag_id)
    assert by_cli["dag_id"] == dag_id and by_cli["tags"] == ["team:ml"]


def test_publish_says_when_metaflow_did_not_load_the_extension(tmp_path):
    """Metaflow looks for extensions only in METAFLOW_EXTENSIONS_SEARCH_DIRS when it is set."""
    (tmp_path / "elsewhere").mkdir()
    published = _run([CLI, "publish", str(flow_path("deployer_flow.py")), "--store",
                      f"file://{tmp_path / 'store'}", "--compute", "local"],
                     METAFLOW_EXTENSIONS_SEARCH_DIRS=str(tmp_path / "elsewhere"))  # fmt: skip
    assert published.returncode != 0
    assert published.stderr.strip().splitlines()[-1] == (
        "error: Metaflow did not load the airflow-manifest extension that metaflow-airflow "
        "ships (metaflow_extensions/airflow_manifest): install metaflow-airflow in the Python "
        "that runs the flow, and check METAFLOW_EXTENSIONS_SEARCH_DIRS"
    )


def test_an_installed_wheel_carries_the_extension(tmp_path):
    """The wheel as a user installs it (not this checkout): Metaflow finds the extension by
    the distribution's metadata, and publish runs through it."""
    from metaflow_airflow.mwaa.bundle import _uv

    built = _run([_uv(), "build", "--quiet", "--out-dir", str(tmp_path / "dist"),
                  str(REPO)])  # fmt: skip
    assert built.returncode == 0, built.stderr
    (wheel,) = (tmp_path / "dist").glob("*.whl")
    site = tmp_path / "site"
    installed = _run([_uv(), "pip", "install", "--quiet", "--python", sys.executable,
                      "--no-deps", "--target", str(site), str(wheel)])  # fmt: skip
    assert installed.returncode == 0, installed.stderr

    only_the_wheel = {"PYTHONPATH": str(site), "METAFLOW_EXTENSIONS_SEARCH_DIRS": str(site)}
    where = _run([sys.executable, "-c", "import metaflow_airflow; print(metaflow_airflow.__file__)"],
                 **only_the_wheel)  # fmt: skip
    assert where.stdout.startswith(str(site)), where.stdout + where.stderr
    published = _run([sys.executable, "-c", "from metaflow_airflow.cli import main; main()", "publish",
                      str(flow_path("deployer_flow.py")), "--store", f"file://{tmp_path / 'store'}",
                      "--compute", "local"], **only_the_wheel)  # fmt: skip
    assert published.returncode == 0, published.stderr
    assert _manifest(tmp_path / "store", "DeployerFlow")["flow_name"] == "DeployerFlow"
