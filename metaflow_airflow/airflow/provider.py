"""What Airflow's ProvidersManager reads about this package (the ``apache_airflow_provider``
entry point): its name and the ``[metaflow_airflow]`` configuration section.

The section documents the ``METAFLOW_AIRFLOW_*`` settings where Airflow users look for them
(``airflow config list``, the UI's configuration page). It is derived from
:class:`~metaflow_airflow.settings.Settings` (each field, its type, its default and its
description), so it cannot drift from what the loader reads.
The environment variables are what the loader reads; ``ui_url`` is also read from Airflow's
configuration, so on Amazon MWAA it can be set as the configuration option
``metaflow_airflow.ui_url``. Airflow loads this for every CLI command: imports stay inside.
"""

from __future__ import annotations

from typing import Any

PACKAGE_NAME = "metaflow-airflow"
CONFIG_SECTION = "metaflow_airflow"
_TYPES = {bool: "boolean", int: "integer", float: "float"}


def get_provider_info() -> dict[str, Any]:
    """Provider metadata in the form of Airflow's provider_info schema."""
    from metaflow_airflow.settings import ENV_PREFIX
    from metaflow_airflow.version import __version__

    return {
        "package-name": PACKAGE_NAME,
        "name": "Metaflow",
        "description": "Run Metaflow flows on Airflow from published manifests.",
        "versions": [__version__],
        "config": {
            CONFIG_SECTION: {
                "description": "metaflow-airflow. Each option is the environment variable "
                f"{ENV_PREFIX}<OPTION>, which is what the loader reads.",
                "options": config_options(),
            }
        },
    }


def config_options() -> dict[str, dict[str, Any]]:
    """One option per setting, in the provider_info schema's form."""
    from metaflow_airflow.settings import Settings, env_var

    options = {}
    for name, field in Settings.model_fields.items():
        default = field.default if isinstance(field.default, (bool, int, float, str)) else None
        options[name] = {
            "description": f"{field.description} Variable: {env_var(name)}.",
            "version_added": "0.1.0",
            "type": _TYPES.get(type(default), "string"),
            "example": None,
            # Airflow formats defaults with str.format: braces would need doubling.
            "default": None if default is None else str(default),
        }
    return options
