"""What every manifest model shares: strict, frozen pydantic models and the name patterns."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

# What Airflow accepts as a DAG id (airflow.utils.helpers.KEY_REGEX) and a bounded length.
DAG_ID_PATTERN = r"^[A-Za-z0-9_.\-]{1,200}$"
# Metaflow step names are Python identifiers.
STEP_NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]{0,199}$"
ENV_NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_.\-]{0,254}$"
# A Metaflow Parameter's name, and an event payload field a Parameter takes its value from.
PARAMETER_NAME_PATTERN = r"^[A-Za-z0-9_\-]{1,200}$"
# A flow or event name in an asset URI: Metaflow's event names (letters, digits, '_', '.', '-'),
# project branches (``user.<name>``: '@' and '+' appear in user names).
ASSET_NAME = r"[A-Za-z0-9_.\-@+]{1,250}"
ASSET_NAME_PATTERN = f"^{ASSET_NAME}$"


class ManifestModel(BaseModel):
    """Unknown fields are errors (a typo never passes silently); parsed manifests are frozen."""

    model_config = ConfigDict(extra="forbid", frozen=True)
