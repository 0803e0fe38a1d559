"""``metaflow-airflow schema``."""

from __future__ import annotations

import json

import click

from metaflow_airflow.manifest.models import manifest_json_schema


@click.command(name="schema")
def schema_command() -> None:
    """Print the JSON Schema of the flow manifest (canonical JSON).

    \b
    Example:
      metaflow-airflow schema > docs/manifest.schema.json
    """
    click.echo(json.dumps(manifest_json_schema(), sort_keys=True, indent=2))
