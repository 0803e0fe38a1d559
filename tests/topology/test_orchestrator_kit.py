"""metaflow-orchestrator-kit, the written contract of Metaflow orchestrator extensions: its
static validator on the distribution's code, and its compliance suite (Metaflow's Deployer API)
against the production topology, with the flows of kit_flows/ (Metaflow's own are not on PyPI).

Conda is declared unsupported (airflow_manifest_deployer.NOT_SUPPORTED): `--compute local` runs
steps in the worker's Python, and conda channels are out of reach on these machines; the part
that runs here, `--environment` reaching every step command, is
tests/unit/runtime/test_commands.py."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from deploying import client_env
from helpers import REPO, flow_path

HERE = Path(__file__).parent
KIT_FLOWS = HERE / "kit_flows"


def test_the_kits_validator_passes_on_the_distributions_code(tmp_path: Path):
    """The validator reads one folder: the two packages the wheel installs."""
    for package in ("metaflow_airflow", "metaflow_extensions"):
        shutil.copytree(
            REPO / package, tmp_path / package, ignore=shutil.ignore_patterns("__pycache__")
        )
    checked = subprocess.run(  # noqa: PLW1510 (the exit code is asserted)
        [sys.executable, "-m", "metaflow_orchestrator_kit.validate", str(tmp_path)],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert checked.returncode == 0, checked.stdout
    assert re.search(r"Results: \d+ passed, 0 failed", checked.stdout)


# The suite's tests in four groups that run at once (each deploys its own flows: the tests of
# one flow file share a group): the runs spend most of their time waiting on Airflow (parsing,
# scheduling, task start), so together they take about half the time of one after another.
GROUPS = (
    "retry_count",
    "nested_foreach",
    "branch_propagated or from_deployment or run_params",
    "config_value or config_params",
)
CONFIG = """\
backends:
  - name: airflow-manifest
    scheduler_type: airflow-manifest
    cluster: null
    decospec: null
    deploy_args:
      compute: local
    enabled: true
"""


@pytest.mark.topology
@pytest.mark.timeout(900)
def test_the_kits_compliance_suite_passes_on_the_topology(stack, tmp_path):
    """Every test of the suite but the conda one (see the module docstring): seven deployments
    and six runs."""
    import metaflow_orchestrator_kit

    suite = Path(metaflow_orchestrator_kit.__file__).parent / "compliance"
    config = tmp_path / "ux_test_config.yaml"
    config.write_text(CONFIG)
    argv = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", str(suite),
            "--ux-config", str(config), "--only-backend", "airflow-manifest", "-rA", "-q",
            "-o", "addopts=", "--timeout", "600", "--import-mode=importlib", "-p", "no:warnings",
            "--tb=short", "--durations=0"]  # fmt: skip
    commands = [[*argv, "-k", f"({selected}) and not conda"] for selected in GROUPS]
    # and beside them, the optional capabilities the suite has no test for (resume, schedule)
    commands.append([sys.executable, str(HERE / "optional_capabilities.py"),
                     str(flow_path("resume_flow.py")), str(flow_path("minutely_flow.py"))])  # fmt: skip
    groups = []
    try:
        for number, command in enumerate(commands):
            with (tmp_path / f"group{number}.log").open("w") as out:
                groups.append(subprocess.Popen(  # a session each: killed whole if the test fails
                    command, cwd=KIT_FLOWS, env=client_env(stack), stdout=out,
                    stderr=subprocess.STDOUT if number < len(GROUPS) else None, text=True,
                    start_new_session=True,
                ))  # fmt: skip
        for group in groups:
            group.wait(timeout=840)
    finally:
        for group in groups:
            if group.poll() is None:
                os.killpg(group.pid, signal.SIGKILL)
                group.wait()
    passed = 0
    for number, group in enumerate(groups[: len(GROUPS)]):
        output = (tmp_path / f"group{number}.log").read_text()
        assert group.returncode == 0, output[-6000:]
        summary = output.strip().splitlines()[-1]
        found = re.fullmatch(r"=* ?(\d+) passed, \d+ deselected.*", summary)
        assert found, summary
        passed += int(found[1])
    assert passed == 7  # the suite's eight tests less conda

    optional = groups[-1]
    output = (tmp_path / f"group{len(GROUPS)}.log").read_text()
    assert optional.returncode == 0, output[-3000:]
    seen = json.loads(output.strip().splitlines()[-1])
    # resume: the run failed on Airflow; resumed here, `start` is cloned, the rest runs
    assert seen["resume"] == {
        "airflow": "failed",
        "resumed": {"successful": True, "start_cloned": True, "report": "3 rows, first 1"},
    }
    # schedule: Airflow's scheduler started a run by itself, and it ran the flow
    assert seen["schedule"] == {"state": "success", "successful": True, "greeting": "scheduled"}
