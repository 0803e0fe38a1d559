"""Publishing: what the manifest records, and clear refusals that upload nothing."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from helpers import METAFLOW_SYSROOT, REPO, flow_path

from metaflow_airflow import CompileError, ManifestStore

pytestmark = pytest.mark.timeout(120)


def test_manifest_records_graph_parameters_and_runtime(publish, store_url):
    result = publish("foreach_flow.py")
    manifest = ManifestStore(store_url).read("ForeachFlow")

    steps = manifest.steps_by_name
    assert [s.name for s in manifest.steps][0] == "start"
    assert steps["start"].type == "foreach" and steps["start"].next == ("square",)
    assert steps["square"].foreach == "start" and steps["shift"].foreach == "start"
    assert steps["join"].joins_foreach == "start" and steps["join"].foreach is None
    assert steps["square"].doc == "Body step one: runs once per item."
    assert manifest.description == "Squares each item, adds an offset, and sums the results."
    assert [(p.name, p.type, p.default) for p in manifest.parameters] == [("offset", "int", 1)]

    runtime = manifest.metaflow
    assert runtime.flow_file == "foreach_flow.py" and runtime.datastore == "local"
    assert runtime.env["METAFLOW_DATASTORE_SYSROOT_LOCAL"] == str(METAFLOW_SYSROOT)
    assert Path(manifest.code_package.url).is_file()
    assert result.code_package_url == manifest.code_package.url
    assert manifest.compute.kind == "local"


def test_json_and_bool_parameters_are_typed(publish, store_url):
    publish("parameters_flow.py")
    params = {p.name: p for p in ManifestStore(store_url).read("ParametersFlow").parameters}
    assert params["config"].type == "json"
    assert params["config"].default == {"colors": ["red", "green"]}
    assert params["loud"].type == "bool" and params["loud"].default is False
    assert params["ratio"].type == "float"


def test_name_overrides_the_dag_id(publish, store_url):
    result = publish("branch_flow.py", dag_id="nightly-branch")
    assert result.dag_id == "nightly-branch"
    assert ManifestStore(store_url).list() == ["nightly-branch"]


def _uploaded_packages(flow_name: str) -> list[Path]:
    return list((METAFLOW_SYSROOT / ".metaflow" / flow_name).glob("data/*/*"))


@pytest.mark.parametrize(
    ("flow", "flow_name", "message"),
    [
        ("batch_flow.py", "BatchFlow", "step 'train' (line 11): @batch is not supported"),
    ],
)
def test_unsupported_flows_are_refused_before_anything_is_uploaded(
    publish, store_url, flow, flow_name, message
):
    with pytest.raises(CompileError) as refused:
        publish(flow)
    assert message in str(refused.value)
    assert _uploaded_packages(flow_name) == []
    assert ManifestStore(store_url).list() == []


def test_kubernetes_compute_refuses_the_local_datastore(publish, store_url):
    with pytest.raises(CompileError, match="needs a cloud datastore"):
        publish("branch_flow.py", compute="kubernetes")
    assert ManifestStore(store_url).list() == []


def test_invalid_dag_id_is_refused(publish):
    with pytest.raises(CompileError, match="Name 'no spaces' contains invalid characters"):
        publish("branch_flow.py", dag_id="no spaces")


def _cli(*args: str) -> subprocess.CompletedProcess:
    exe = Path(sys.executable).parent / "metaflow-airflow"
    return subprocess.run([str(exe), *args], capture_output=True, text=True, check=False)


def test_cli_publish_and_list(store_url):
    published = _cli("publish", str(flow_path("branch_flow.py")), "--store", store_url,
                     "--compute", "local")
    assert published.returncode == 0, published.stderr
    assert published.stdout.splitlines() == [
        "dag_id: BranchFlow",
        f"manifest: {store_url}/manifests/BranchFlow.json",
    ]
    listed = _cli("list", "--store", store_url)
    assert listed.returncode == 0
    assert listed.stdout.split("\t")[:3] == ["BranchFlow", "BranchFlow", "local"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("publish", "tests/flows/batch_flow.py", "--compute", "local"), "@batch is not supported"),
        (("publish", "examples/branch_flow.py"), "needs a cloud datastore"),
        (("list", "--storage-options", "[1]"), "must be a JSON object"),
    ],
)
def test_cli_user_errors_are_one_line_without_traceback(store_url, args, message):
    completed = subprocess.run(
        [str(Path(sys.executable).parent / "metaflow-airflow"), *args, "--store", store_url],
        capture_output=True, text=True, check=False, cwd=REPO,
    )
    assert completed.returncode != 0
    assert message in completed.stderr
    assert "Traceback" not in completed.stderr
    assert message in completed.stderr.strip().splitlines()[-1]
