"""`make demo` ends with what to try next, and every line of it works as printed; other
packages' warnings do not reach the demo's output."""

from __future__ import annotations

import subprocess
import sys
import warnings
from pathlib import Path

import pytest
from helpers import REPO, flow_path

sys.path.insert(0, str(REPO / "scripts"))
import demo

pytestmark = [pytest.mark.once, pytest.mark.timeout(300)]


def test_third_party_warnings_are_silenced_and_ours_are_not(monkeypatch):
    monkeypatch.delenv("PYTHONWARNINGS", raising=False)
    from starlette.exceptions import StarletteDeprecationWarning

    with warnings.catch_warnings(record=True) as shown:
        demo.quiet_third_party_warnings()
        warnings.warn_explicit(
            "old", StarletteDeprecationWarning, "routing.py", 1, module="starlette.routing"
        )
        warnings.warn_explicit("deprecated", DeprecationWarning, "x.py", 1, module="airflow.x")
        warnings.warn_explicit(
            "ours", UserWarning, "parse.py", 1, module="metaflow_airflow.airflow.loader.parse"
        )
    assert [str(w.message) for w in shown] == ["ours"]
    assert demo.os.environ["PYTHONWARNINGS"] == "ignore"  # the processes it starts


def test_every_next_step_runs_as_printed(tmp_path: Path):
    """The demo's folder as the demo leaves it (a published flow, a finished run), then each
    printed command line, run by a shell from the project folder."""
    from metaflow_airflow import PublishRequest, publish_flow

    datastore = tmp_path / "metaflow"
    env = {**demo.os.environ, "METAFLOW_DATASTORE_SYSROOT_LOCAL": str(datastore)}
    publish_flow(
        flow_path("foreach_flow.py"),
        PublishRequest(store=f"file://{tmp_path / 'store'}", compute="local"),
        env=env,
    )
    subprocess.run(
        [sys.executable, str(flow_path("foreach_flow.py")), "run"],
        env=env,
        cwd=tmp_path,
        check=True,
        capture_output=True,
    )

    lines = demo.next_steps(tmp_path)
    commands = [line for line in lines if not line.startswith("#")]
    assert len(commands) >= 4 and all(line.startswith("#") for line in lines[::2])
    outputs = []
    for command in commands:
        if command == "make airflow":  # starts a server: only check the target exists
            assert demo._make_target("airflow")
            continue
        done = subprocess.run(
            ["bash", "-c", command], cwd=REPO, capture_output=True, text=True, check=False
        )
        assert done.returncode == 0, (command, done.stderr)
        outputs.append(done.stdout)
    show, render, history, client = outputs[:4]
    assert "dag_id:    ForeachFlow" in show and "retries 0" in show
    assert "square" in render
    assert history.startswith("* ")
    assert client.startswith("ForeachFlow/") and client.strip().endswith("]")
