"""Options shared by several subcommands; their defaults are the settings
(``METAFLOW_AIRFLOW_STORE``, ``METAFLOW_AIRFLOW_STORAGE_OPTIONS``), read when a command runs."""

from __future__ import annotations

import json
from typing import Any

import click

from metaflow_airflow.settings import Settings


def settings_default(name: str) -> Any:
    """The default of an option: the setting ``name`` from the environment, as JSON text for
    objects (the option's own parser reads it)."""

    def default() -> Any:
        value = Settings.from_environment().model_dump()[name]
        return json.dumps(value) if isinstance(value, dict) else value

    return default


store_option = click.option(
    "--store",
    default=settings_default("store"),
    required=True,
    metavar="URL",
    help="Manifest store URL (file:///path, s3://bucket/prefix). Default: $METAFLOW_AIRFLOW_STORE.",
)

storage_options_option = click.option(
    "--storage-options",
    default=settings_default("storage_options"),
    metavar="JSON",
    callback=lambda ctx, param, value: parse_json_object(value, param.name),
    help="fsspec options for the store, as a JSON object. "
    "Default: $METAFLOW_AIRFLOW_STORAGE_OPTIONS.",
)


def parse_json_object(text: str, name: str) -> dict[str, Any]:
    try:
        value = json.loads(text or "{}")
    except ValueError as exc:
        raise click.BadParameter(f"not JSON: {exc}", param_hint=f"--{name.replace('_', '-')}")
    if not isinstance(value, dict):
        raise click.BadParameter("must be a JSON object", param_hint=f"--{name.replace('_', '-')}")
    return value
