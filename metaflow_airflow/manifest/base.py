"""What every manifest model shares: strict, frozen pydantic models and the name patterns."""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, JsonValue

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


# How deep a JSON value of a manifest (a Parameter's default, a toleration...) may nest: Airflow
# walks such values recursively (Params, serialization), and a value nested deeper than
# Python's recursion limit would fail the whole loader file in Airflow's DAG processor.
MAX_JSON_DEPTH = 32


def check_json_depth(value: JsonValue) -> JsonValue:
    """Refuse a JSON value nested deeper than ``MAX_JSON_DEPTH`` (without recursing)."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, (dict, list)):
            if depth > MAX_JSON_DEPTH:
                raise ValueError(f"nested deeper than {MAX_JSON_DEPTH} levels")
            children = item.values() if isinstance(item, dict) else item
            stack.extend((child, depth + 1) for child in children)
    return value


BoundedJson = Annotated[JsonValue, AfterValidator(check_json_depth)]


class ManifestModel(BaseModel):
    """Unknown fields are errors (a typo never passes silently); parsed manifests are frozen."""

    model_config = ConfigDict(extra="forbid", frozen=True)
