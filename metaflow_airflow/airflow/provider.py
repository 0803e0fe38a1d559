"""What Airflow's ProvidersManager reads about this package (the ``apache_airflow_provider``
entry point): its name and the ``[metaflow_airflow]`` configuration section.

The section documents the ``METAFLOW_AIRFLOW_*`` settings where Airflow users look for them
(``airflow config list``, the UI's configuration page). It is derived from
:class:`~metaflow_airflow.settings.Settings` (each field, its type, its default and the line of
the class docstring that names its variable), so it cannot drift from what the loader reads.
The environment variables are what the loader reads; ``ui_url`` is also read from Airflow's
configuration, so on Amazon MWAA it can be set as the configuration option
``metaflow_airflow.ui_url``. Airflow loads this for every CLI command: imports stay inside.
"""

from __future__ import annotations

import re
from typing import Any

PACKAGE_NAME = "metaflow-airflow"
CONFIG_SECTION = "metaflow_airflow"
ENV_PREFIX = "METAFLOW_AIRFLOW_"
# Options read by the Airflow side that are not loader settings.
_EXTRA_OPTIONS = {
    "ui_url": {
        "description": "Metaflow UI base URL: every Metaflow task gets a 'Metaflow UI' link to "
        "its pathspec. Also read from Airflow's configuration ([metaflow_airflow] ui_url). "
        "Variable: METAFLOW_AIRFLOW_UI_URL.",
        "version_added": "0.1.0",
        "type": "string",
        "example": "https://metaflow-ui.example.com",
        "default": None,
    },
}
_TYPES = {bool: "boolean", int: "integer", float: "float"}


def get_provider_info() -> dict[str, Any]:
    """Provider metadata in the form of Airflow's provider_info schema."""
    from metaflow_airflow import __version__

    return {
        "package-name": PACKAGE_NAME,
        "name": "Metaflow",
        "description": "Run Metaflow flows on Airflow from published manifests.",
        "versions": [__version__],
        "config": {
            CONFIG_SECTION: {
                "description": "metaflow-airflow. Each option is the environment variable "
                f"{ENV_PREFIX}<OPTION>, which is what the loader reads.",
                "options": {**config_options(), **_EXTRA_OPTIONS},
            }
        },
    }


def config_options() -> dict[str, dict[str, Any]]:
    """One option per loader setting, in the provider_info schema's form."""
    from metaflow_airflow.settings import Settings

    described = _docstring_descriptions(Settings.__doc__ or "")
    options = {}
    for name, field in Settings.model_fields.items():
        variable = f"{ENV_PREFIX}{name.upper()}"
        default = field.default if isinstance(field.default, (bool, int, float, str)) else None
        options[name] = {
            "description": f"{field.description or described.get(variable, '')} "
            f"Variable: {variable}.".strip(),
            "version_added": "0.1.0",
            "type": _TYPES.get(type(default), "string"),
            "example": None,
            # Airflow formats defaults with str.format: braces would need doubling.
            "default": None if default is None else str(default),
        }
    return options


def _docstring_descriptions(doc: str) -> dict[str, str]:
    """``VARIABLE -> what it does`` from docstring entries like ````VAR`` does this;``."""
    text = " ".join(doc.split())
    entries = re.findall(r"``(METAFLOW_AIRFLOW_[A-Z_]+)[^`]*``\s*([^;]+?)(?:;|\.\s*$|$)", text)
    descriptions = {}
    for variable, description in entries:
        description = re.sub(r"^(is|are) ", "", description.strip().rstrip("."))
        descriptions[variable] = description[:1].upper() + description[1:] + "."
    return descriptions
