"""What the commands that call Airflow's REST API share (`trigger`, `runs`): the `--api-url`
option and the client built from it and the credential settings (``METAFLOW_AIRFLOW_API_*``:
secrets stay out of command lines and shell history)."""

from __future__ import annotations

import click

from metaflow_airflow.cli.options import settings_default
from metaflow_airflow.rest.client import AirflowApi, ApiCredentials
from metaflow_airflow.settings import Settings

api_url_option = click.option(
    "--api-url",
    default=settings_default("api_url"),
    metavar="URL",
    help="Airflow API server (Airflow 3's api-server, Airflow 2's webserver). "
    "Default: $METAFLOW_AIRFLOW_API_URL; credentials from $METAFLOW_AIRFLOW_API_TOKEN or "
    "$METAFLOW_AIRFLOW_API_USERNAME / $METAFLOW_AIRFLOW_API_PASSWORD.",
)


def api_client(api_url: str | None) -> AirflowApi:
    settings = Settings.from_environment()
    if api_url:
        settings = settings.model_copy(update={"api_url": api_url})
    return AirflowApi(ApiCredentials.from_settings(settings))
