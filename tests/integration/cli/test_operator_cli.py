"""The operator's commands, run through the real ``metaflow-airflow`` click group on a store
with a published flow: progress lines while publishing, list/show with ``--json``, render
(the DAG as the loader builds it), and ``--help`` with examples on every command."""

from __future__ import annotations

import json
import sys

import click
import pytest
from click.testing import CliRunner
from helpers import flow_path

from metaflow_airflow.cli import cli

pytestmark = [pytest.mark.timeout(300), pytest.mark.usefixtures("airflow_db")]


@pytest.fixture(scope="module")
def published(tmp_path_factory):
    """foreach_flow.py published through the CLI; yields (store URL, the publish result)."""
    store = f"file://{tmp_path_factory.mktemp('cli-store')}"
    result = CliRunner().invoke(
        cli, ["publish", str(flow_path("foreach_flow.py")), "--store", store, "--compute", "local"]
    )
    assert result.exit_code == 0, result.output
    return store, result


def invoke(*args: str):
    result = CliRunner().invoke(cli, list(args))
    assert result.exit_code == 0, result.output
    return result


def test_publish_reports_progress_on_stderr(published):
    store, result = published
    progress = result.stderr.splitlines()
    assert progress[0] == "compiling ForeachFlow..."
    assert progress[1] == "packaging code and uploading it to the local datastore..."
    assert progress[2] == f"writing manifest {store}/manifests/ForeachFlow.json..."
    assert "dag_id: ForeachFlow" in result.stdout


def test_list_json(published):
    store, _ = published
    (row,) = json.loads(invoke("list", "--store", store, "--json").stdout)
    assert (row["dag_id"], row["valid"], row.get("error")) == ("ForeachFlow", True, None)
    assert row["compute"] == "local" and row["published_by"] == "tester"


def test_show_summarizes_the_manifest(published):
    store, _ = published
    lines = invoke("show", "ForeachFlow", "--store", store).stdout.splitlines()
    assert f"manifest:  {store}/manifests/ForeachFlow.json" in lines
    assert "  offset (int, default 1)" in lines
    assert "  square  linear  after start  in foreach start" in lines


def test_show_json_is_the_manifest_and_its_url(published):
    from metaflow_airflow import ManifestStore

    store, _ = published
    payload = json.loads(invoke("show", "ForeachFlow", "--store", store, "--json").stdout)
    assert payload["manifest_url"] == f"{store}/manifests/ForeachFlow.json"
    manifest = ManifestStore(store).read("ForeachFlow")
    assert payload["manifest"] == manifest.model_dump(mode="json")


def test_render_prints_the_task_tree_the_loader_builds(published):
    store, _ = published
    lines = invoke("render", "ForeachFlow", "--store", store).stdout.splitlines()
    assert lines[0] == "ForeachFlow  (5 tasks; schedule: none)"
    assert lines[1] == "├─ start  [MetaflowLocalOperator]"
    assert lines[2] == "├─ start_foreach  [mapped task group: one instance per split of start]"
    assert lines[3] == "│  ├─ square  [MetaflowLocalOperator]  ← start"
    assert lines[-1] == "└─ end  [MetaflowLocalOperator]  ← join"


def test_unknown_dag_is_one_line_error(published, capsys, monkeypatch):
    from metaflow_airflow.cli import main

    store, _ = published
    monkeypatch.setattr(sys, "argv", ["metaflow-airflow", "show", "NoSuchFlow", "--store", store])
    with pytest.raises(SystemExit) as exit_info:
        main()
    assert exit_info.value.code == 1
    assert capsys.readouterr().err.startswith("error: no manifest ")


@pytest.mark.parametrize("command", sorted(cli.commands))
def test_every_command_has_help_with_examples(command):
    text = invoke(command, "--help").stdout
    assert "Example" in text, text
    assert isinstance(cli.commands[command], click.Command)


def test_show_names_each_steps_retries_timeout_resources_and_compute():
    from manifests import FOREACH_STEPS, make_manifest

    from metaflow_airflow.cli.show import step_details
    from metaflow_airflow.manifest.models import PodSpec, Resources

    step = FOREACH_STEPS[1].model_copy(
        update={
            "retries": 3,
            "retry_delay_seconds": 120,
            "timeout_seconds": 600,
            "resources": Resources(cpu=0.5, memory_mb=2048, gpu=1),
            "pod": PodSpec(image="registry.example.com/ml:1.4", namespace="ml"),
        }
    )
    pods = make_manifest(FOREACH_STEPS, kubernetes=True)
    assert step_details(pods, step) == (
        "retries 3 (120 s apart); timeout 600 s; cpu 0.5, memory 2048 MB, disk 10240 MB, "
        "gpu 1 (nvidia); kubernetes pod registry.example.com/ml:1.4 in ml"
    )
    assert step_details(make_manifest(FOREACH_STEPS), FOREACH_STEPS[0]) == (
        "retries 0; no timeout; cpu 1, memory 4096 MB, disk 10240 MB; local process on the worker"
    )
