"""What a publish refuses before it writes anything, and what it does not write twice: a file
that is no flow, ``--with batch``, a Parameter on a reserved attribute, a store that cannot be
written, a DAG id that belongs to another flow; and an unchanged flow published again."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from helpers import METAFLOW_SYSROOT, flow_path

from metaflow_airflow import ManifestStore
from metaflow_airflow.errors import CompileError, PublishError

pytestmark = pytest.mark.timeout(300)


def files(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` with its bytes: what a refused publish must leave as is."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def packages(flow_name: str) -> list[Path]:
    """The code packages uploaded for ``flow_name`` to the tests' local datastore."""
    return sorted((METAFLOW_SYSROOT / ".metaflow" / flow_name).glob("data/*/*"))


def write_flow(folder: Path, name: str, body: str) -> Path:
    path = folder / name
    path.write_text(textwrap.dedent(body))
    return path


def flow_source(name: str, parameter: str = "", *, runs: bool = True) -> str:
    """A two-step flow class ``name`` with an optional Parameter line, run as a script or not."""
    run = f'\n    if __name__ == "__main__":\n        {name}()\n' if runs else ""
    return f"""
    from metaflow import FlowSpec, Parameter, step

    class {name}(FlowSpec):
        {parameter}

        @step
        def start(self):
            self.next(self.end)

        @step
        def end(self):
            pass
{run}"""


FLOW_NEVER_RUN = flow_source("NeverRunFlow", runs=False)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            "x = 1\n",
            (
                "notaflow.py: no FlowSpec subclass found: a flow file defines a class that "
                "extends metaflow.FlowSpec and runs it"
            ),
        ),
        (
            FLOW_NEVER_RUN,
            (
                "notaflow.py: NeverRunFlow is defined but never run: end the file with "
                '`if __name__ == "__main__": NeverRunFlow()`'
            ),
        ),
        (
            "import no_such_module_here\n",
            "notaflow.py: ModuleNotFoundError: No module named 'no_such_module_here'",
        ),
    ],
)
def test_a_file_that_runs_no_flow_says_why(publish, store_url, tmp_path, body, message):
    flow = write_flow(tmp_path, "notaflow.py", body)
    with pytest.raises(PublishError) as refused:
        publish(flow)
    assert str(refused.value) == message
    assert ManifestStore(store_url).list() == []


def test_with_batch_is_refused_like_batch_in_the_source(store_url):
    from click.testing import CliRunner

    from metaflow_airflow.cli import cli

    result = CliRunner().invoke(
        cli,
        [
            "publish",
            str(flow_path("branch_flow.py")),
            "--store",
            store_url,
            "--with",
            "retry",
            "--with",
            "batch:cpu=2",
        ],
    )
    assert isinstance(result.exception, CompileError)
    assert str(result.exception) == (
        "--with batch:cpu=2: @batch is not supported on Airflow: AWS Batch cannot run Airflow "
        "tasks; use @kubernetes or @resources"
    )
    assert not Path(store_url.removeprefix("file://")).exists()


RESERVED_PARAMETER_FLOW = flow_source(
    "ReservedParameterFlow", 'name = Parameter("name", default="x")'
)


def test_a_parameter_on_a_reserved_attribute_is_refused(publish, store_url, tmp_path):
    flow = write_flow(tmp_path, "reserved_flow.py", RESERVED_PARAMETER_FLOW)
    with pytest.raises(CompileError) as refused:
        publish(flow)
    assert str(refused.value) == (
        "the attribute 'name' holds Parameter 'name', but Metaflow ignores Parameters on "
        "FlowSpec's own attribute names (cmd, foreach_stack, index, input, name, script_name); "
        "rename the attribute, e.g. `name_ = Parameter('name', ...)` (the Parameter's name can "
        "stay)"
    )
    assert packages("ReservedParameterFlow") == []
    # Renamed as the message says, the Parameter keeps its name and reaches the manifest.
    flow.write_text(flow.read_text().replace("    name = Parameter", "    name_ = Parameter"))
    publish(flow)
    (parameter,) = ManifestStore(store_url).read("ReservedParameterFlow").parameters
    assert (parameter.name, parameter.default) == ("name", "x")


def test_a_store_that_cannot_be_written_stops_the_publish_before_the_upload(publish, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    before = packages("BranchFlow")
    with pytest.raises(PublishError) as refused:
        publish("branch_flow.py", store=f"file://{blocker}/store")
    assert str(refused.value).startswith(f"cannot write to manifest store file://{blocker}/store: ")
    assert packages("BranchFlow") == before
    assert files(tmp_path) == {"a-file": b"not a folder"}


def test_a_missing_bucket_stops_the_publish_before_the_upload(publish, s3_bucket_info):
    before = packages("ForeachFlow")
    missing = f"s3://{s3_bucket_info.name}-missing/flows"
    with pytest.raises(PublishError) as refused:
        publish("foreach_flow.py", store=missing, storage_options=s3_bucket_info.storage_options)
    assert str(refused.value) == (
        f"cannot write to manifest store {missing}: the bucket '{s3_bucket_info.name}-missing' "
        "does not exist; create it, or correct the store URL"
    )
    assert packages("ForeachFlow") == before


def test_a_dag_id_of_another_flow_is_not_taken_over(publish, store_url):
    publish("branch_flow.py")
    store = Path(store_url.removeprefix("file://"))
    before = files(store)
    with pytest.raises(CompileError) as refused:
        publish("foreach_flow.py", dag_id="BranchFlow")
    assert str(refused.value).startswith(
        "DAG id BranchFlow belongs to flow BranchFlow (branch_flow.py), published by tester at "
    )
    assert str(refused.value).endswith(
        "; publishing ForeachFlow (foreach_flow.py) would replace it: choose another --name, or "
        "pass --replace"
    )
    assert files(store) == before
    publish("foreach_flow.py", dag_id="BranchFlow", replace=True)
    assert ManifestStore(store_url).read("BranchFlow").flow_name == "ForeachFlow"


def test_an_unchanged_flow_is_not_published_again(publish, store_url):
    first = publish("branch_flow.py")
    assert first.unchanged_version is None
    store = Path(store_url.removeprefix("file://"))
    before = files(store)
    again = publish("branch_flow.py")
    (version,) = ManifestStore(store_url).history("BranchFlow")
    assert again.unchanged_version == version.name
    assert files(store) == before
    changed = publish("branch_flow.py", tags=("team:ml",))
    assert changed.unchanged_version is None
    assert len(ManifestStore(store_url).history("BranchFlow")) == 2


def test_an_unreachable_datastore_stops_the_publish_before_the_upload(
    publish, store_url, s3_env, monkeypatch
):
    """Metaflow would retry its uploads for minutes; one quick request says why at once."""
    import socket

    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        endpoint = f"http://127.0.0.1:{sock.getsockname()[1]}"
    monkeypatch.setenv("METAFLOW_S3_ENDPOINT_URL", endpoint)
    options = ("--datastore=s3", "--datastore-root=s3://unreachable/metaflow")
    with pytest.raises(PublishError) as refused:
        publish("branch_flow.py", metaflow_options=options)
    assert str(refused.value) == (
        f"cannot reach the Metaflow s3 datastore s3://unreachable/metaflow: cannot connect to "
        f"{endpoint}; check Metaflow's S3 endpoint (METAFLOW_S3_ENDPOINT_URL) and the network"
    )
    assert ManifestStore(store_url).list() == []
