"""metaflow-orchestrator-kit, the written contract of Metaflow orchestrator extensions: its
static validator on the distribution's code, and its compliance suite (Metaflow's Deployer API)
against the production topology, with the flows of kit_flows/ (Metaflow's own are not on PyPI).

Conda is declared unsupported (airflow_manifest_deployer.NOT_SUPPORTED): `--compute local` runs
steps in the worker's Python, and conda channels are out of reach on these machines; the part
that runs here, `--environment` reaching every step command, is
tests/unit/runtime/test_commands.py."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from deploying import client_env
from helpers import REPO

KIT_FLOWS = Path(__file__).parent / "kit_flows"


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


@pytest.mark.topology
@pytest.mark.topology_full
@pytest.mark.timeout(900)
def test_the_kits_compliance_suite_passes_on_the_topology(stack, tmp_path):
    """Seven deployments and six runs, about five minutes here: beyond `make test`'s budget for
    this work, so `make test-topology` runs it (the Deployer itself is in make test through
    test_deployer_api.py, test_flow_command.py and test_trigger_command.py)."""
    import metaflow_orchestrator_kit

    suite = Path(metaflow_orchestrator_kit.__file__).parent / "compliance"
    config = tmp_path / "ux_test_config.yaml"
    config.write_text(
        "backends:\n"
        "  - name: airflow-manifest\n"
        "    scheduler_type: airflow-manifest\n"
        "    cluster: null\n"
        "    decospec: null\n"
        "    deploy_args:\n"
        "      compute: local\n"
        "    enabled: true\n"
    )
    completed = subprocess.run(  # noqa: PLW1510 (the exit code is asserted)
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", str(suite),
         "--ux-config", str(config), "--only-backend", "airflow-manifest",
         "-k", "not conda", "-rA", "-q", "-o", "addopts=", "--timeout", "600",
         "--import-mode=importlib", "-p", "no:warnings", "--tb=short"],
        cwd=KIT_FLOWS, env=client_env(stack), capture_output=True, text=True, timeout=880,
    )  # fmt: skip
    summary = completed.stdout.strip().splitlines()[-1]
    assert completed.returncode == 0, completed.stdout[-6000:]
    # every test of the suite but the conda one (see the module docstring)
    assert re.fullmatch(r"=* ?7 passed, 1 deselected.*", summary), summary
