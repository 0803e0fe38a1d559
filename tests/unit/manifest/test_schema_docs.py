"""docs/manifest.schema.json is the published contract: it must match the models exactly."""

from __future__ import annotations

import json

from click.testing import CliRunner
from helpers import REPO

from metaflow_airflow.cli import cli
from metaflow_airflow.manifest.models import SCHEMA_VERSION, manifest_json_schema

SCHEMA_FILE = REPO / "docs" / "manifest.schema.json"
REGENERATE = ".venv/bin/metaflow-airflow schema > docs/manifest.schema.json"


def _schema_text() -> str:
    result = CliRunner().invoke(cli, ["schema"])
    assert result.exit_code == 0, result.output
    return result.stdout


def test_schema_command_prints_the_manifest_schema_as_json():
    schema = json.loads(_schema_text())
    assert schema["title"] == "FlowManifest"
    assert schema == manifest_json_schema()
    assert schema["properties"]["schema_version"]["const"] == SCHEMA_VERSION


def test_schema_command_output_is_canonical():
    text = _schema_text()
    assert text == json.dumps(json.loads(text), sort_keys=True, indent=2) + "\n"


def test_documented_schema_is_up_to_date():
    assert SCHEMA_FILE.exists(), f"{SCHEMA_FILE} is missing; regenerate it with: {REGENERATE}"
    assert SCHEMA_FILE.read_text(encoding="utf-8") == _schema_text(), (
        f"{SCHEMA_FILE.name} differs from the manifest models; regenerate it with: {REGENERATE}"
    )
