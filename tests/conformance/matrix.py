"""Which shape × behaviour combinations run where, and which are known to fail today (strict
xfails naming the issue item or finding): the one table the tests and docs/features.md use."""

from __future__ import annotations

from collections.abc import Callable

from behaviours import BEHAVIOURS
from packaging.version import Version
from shapes import SHAPES

# Known divergences: label -> (what differs, which combinations it breaks); issue items are
# labelled "issue N item M", what this suite found "finding N". When a fix lands, the strict
# xfail turns into an XPASS failure: remove the entry then (and regenerate docs/features.md).
KNOWN_FAILURES: dict[str, tuple[str, Callable[[str, str], bool]]] = {}

# What `make test` runs on each Airflow line (`--conformance=all`: the whole matrix). The newest
# line (the default environment) runs every shape but the wide foreach, and every behaviour;
# the other lines (`make test` runs the suite on 2.11) three flows that cover foreach, nested
# foreach, switch, parameters and @retry/@catch.
CI: tuple[tuple[str, str], ...] = (
    ("linear", "current"),
    ("linear", "catch_retry"),
    ("linear", "include_file"),
    ("linear", "timeout_catch"),
    ("branch", "logs"),
    ("nested_branches", "tags"),
    ("small_foreach", "config"),
    ("simple_foreach", "parameters"),
    ("nested_foreach", "artifacts"),
    ("switch", "cards"),
    ("nested_switch", "parameters"),
    ("switch_in_branch", "artifacts"),
    ("switch_in_foreach", "artifacts"),
    ("foreach_in_switch", "resume"),
    ("recursive_switch", "artifacts"),
)
SMALL: tuple[tuple[str, str], ...] = (
    ("nested_foreach", "artifacts"),
    ("nested_switch", "parameters"),
    ("linear", "catch_retry"),
)


def ci_subset(airflow_version: str) -> tuple[tuple[str, str], ...]:
    """The combinations `make test` runs on this Airflow line."""
    return CI if Version(airflow_version) >= Version("3.3") else SMALL


def combinations() -> list[tuple[str, str]]:
    """Every combination of the whole matrix; a shape publish refuses is checked once."""
    return [
        (shape, behaviour)
        for shape in SHAPES
        for behaviour in BEHAVIOURS
        if not SHAPES[shape].loops or behaviour == "artifacts"
    ]


def known_failures(shape: str, behaviour: str) -> list[str]:
    """The labels of the known failures that break this combination."""
    return [label for label, (_, hits) in KNOWN_FAILURES.items() if hits(shape, behaviour)]


def xfail_reason(labels: list[str]) -> str:
    return "; ".join(f"{label}: {KNOWN_FAILURES[label][0]}" for label in labels)
