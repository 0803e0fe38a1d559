"""Amazon MWAA, simulated: for the newest MWAA Airflow 2.x and 3.x on PyPI, a fresh virtualenv
stands in for the MWAA image (Airflow and the Amazon provider, from PyPI), the bundle's
requirements.txt is installed OFFLINE from the wheels of its plugins.zip (unzipped into the
plugins folder, as MWAA does), the bundle's loader goes into dags/, and a DagBag there loads
the Kubernetes DAGs published to an S3 store (the moto server) — with our plugin registered.

Python 3.11 for both (the machine's; MWAA runs 3.12 for Airflow 3: ``--python-version``).
Each version costs ~1 minute with a warm package cache (measured; README "Tested versions").
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from helpers import REPO

from metaflow_airflow.mwaa.bundle import PACKAGE, build_bundle

pytestmark = [pytest.mark.timeout(900), pytest.mark.mwaa]

# The newest Amazon MWAA images' Airflow versions that PyPI has (../shared/ANCHORS.md).
MWAA_AIRFLOW = ["2.11.2", "3.3.1"]
PYTHON = f"{sys.version_info.major}.{sys.version_info.minor}"

# Runs inside the simulated environment: what the MWAA scheduler would see (with the tests'
# harness on its path, nothing else of this checkout).
PROBE = """
import json, os
from airflow_harness import dag_bag_class, loaded_plugin_names
bag = dag_bag_class()(dag_folder=os.environ["AIRFLOW__CORE__DAGS_FOLDER"])
print(json.dumps({
    "dags": {d: sorted(t.task_type for t in bag.get_dag(d).tasks) for d in bag.dag_ids},
    "errors": {k: str(v) for k, v in bag.import_errors.items()},
    "plugins": sorted(loaded_plugin_names()),
}))
"""


def _uv() -> str:
    return shutil.which("uv") or str(Path(sys.executable).parent / "uv")


def _run(argv: list[str], **kwargs) -> subprocess.CompletedProcess:
    completed = subprocess.run(argv, capture_output=True, text=True, **kwargs)
    assert completed.returncode == 0, completed.stderr[-3000:]
    return completed


@pytest.mark.parametrize("airflow_version", MWAA_AIRFLOW)
def test_bundle_installs_offline_and_loads_published_dags(
    airflow_version, tmp_path, publish_to_s3, s3_bucket_info
):
    manifest, _ = publish_to_s3("foreach_flow.py")
    store = f"{s3_bucket_info.url}/flows"

    bundle = build_bundle(tmp_path / "bundle", airflow_version, python_version=PYTHON)
    requirements = bundle.requirements.read_text().splitlines()
    assert requirements[3:5] == ["--no-index", "--find-links /usr/local/airflow/plugins"]
    assert f"{PACKAGE}==" in "\n".join(requirements)
    pinned = {line.split("==")[0] for line in requirements if "==" in line}
    assert {"apache-airflow-providers-cncf-kubernetes", "s3fs", "pydantic"} <= pinned

    # The MWAA image: Airflow and the Amazon provider, at the versions the bundle assumed.
    env = tmp_path / "mwaa-env"
    _run([_uv(), "venv", "--quiet", "--seed", "--python", sys.executable, str(env)])
    python = str(env / "bin" / "python")
    _run([_uv(), "pip", "install", "--quiet", "--python", python,
          f"apache-airflow=={airflow_version}", "apache-airflow-providers-amazon",
          "--constraint", str(bundle.assumed_constraints)])

    home = tmp_path / "airflow"
    plugins, dags = home / "plugins", home / "dags"
    with zipfile.ZipFile(bundle.plugins_zip) as archive:
        archive.extractall(plugins)
    shutil.copytree(bundle.out_dir / "dags", dags)
    assert (dags / "dags_loader.py").read_bytes() == (REPO / "dags_loader.py").read_bytes()
    # MWAA's own install: pip, offline, the plugins folder as the only source.
    offline = bundle.requirements.read_text().replace("/usr/local/airflow/plugins", str(plugins))
    (tmp_path / "requirements.txt").write_text(offline)
    _run([python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
          "-r", str(tmp_path / "requirements.txt")])

    airflow_env = {
        **os.environ,
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(dags),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(plugins),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "METAFLOW_AIRFLOW_STORE": store,
        "METAFLOW_AIRFLOW_STORAGE_OPTIONS": json.dumps(s3_bucket_info.storage_options),
        "PYTHONPATH": str(REPO / "tests"),  # the probe's harness; the package is the bundle's
    }
    _run([str(env / "bin" / "airflow"), "db", "migrate"], env=airflow_env)
    probe = _run([python, "-c", PROBE], env=airflow_env, cwd=tmp_path)
    seen = json.loads(probe.stdout.strip().splitlines()[-1])

    assert seen["errors"] == {}
    assert set(seen["dags"]) == {manifest.dag_id}, (probe.stdout + probe.stderr)[-3000:]
    assert set(seen["dags"][manifest.dag_id]) == {"MetaflowKubernetesOperator"}
    assert "metaflow_airflow" in seen["plugins"]
