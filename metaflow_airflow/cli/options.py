"""Options shared by several subcommands."""

from __future__ import annotations

import json
from typing import Any

import click

store_option = click.option(
    "--store",
    envvar="METAFLOW_AIRFLOW_STORE",
    required=True,
    metavar="URL",
    help="Manifest store URL (file:///path, s3://bucket/prefix). Default: $METAFLOW_AIRFLOW_STORE.",
)

storage_options_option = click.option(
    "--storage-options",
    envvar="METAFLOW_AIRFLOW_STORAGE_OPTIONS",
    default="{}",
    metavar="JSON",
    callback=lambda ctx, param, value: parse_json_object(value, param.name),
    help="fsspec options for the store, as a JSON object. Default: $METAFLOW_AIRFLOW_STORAGE_OPTIONS.",
)


def parse_json_object(text: str, name: str) -> dict[str, Any]:
    try:
        value = json.loads(text or "{}")
    except ValueError as exc:
        raise click.BadParameter(f"not JSON: {exc}", param_hint=f"--{name.replace('_', '-')}")
    if not isinstance(value, dict):
        raise click.BadParameter("must be a JSON object", param_hint=f"--{name.replace('_', '-')}")
    return value
