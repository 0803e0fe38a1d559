"""Which shape × behaviour combinations run where, and which are known to fail today (strict
xfails naming the issue item or finding): the one table the tests and docs/features.md use."""

from __future__ import annotations

from collections.abc import Callable

from behaviours import BEHAVIOURS
from packaging.version import Version
from shapes import SHAPES


# Known divergences: label -> (what differs, which combinations it breaks). When a fix lands the strict xfail
# turns into an XPASS failure: remove the entry then.
def _shape(*names: str) -> Callable[[str, str], bool]:
    return lambda shape, behaviour: shape in names


def _behaviour(*names: str) -> Callable[[str, str], bool]:
    return lambda shape, behaviour: behaviour in names


KNOWN_FAILURES: dict[str, tuple[str, Callable[[str, str], bool]]] = {
    "issue 15 item 1": (
        "a switch inside a foreach body fails its join",
        _shape("switch_in_foreach"),
    ),
    "issue 15 item 2": (
        "a switch inside a static branch skips join and end, yet the DagRun succeeds",
        _shape("switch_in_branch"),
    ),
    "issue 15 item 3": (
        "a recursive switch publishes (and runs its loop once)",
        _shape("recursive_switch"),
    ),
    "issue 15 item 4": (
        "Config becomes a string Param with a dict default: Airflow refuses the run",
        _behaviour("config"),
    ),
    "issue 15 item 5": ("IncludeFile is refused at publish", _behaviour("include_file")),
    "issue 15 item 6": (
        "local compute stores no step logs (stdout, stderr: also a failed task's traceback)",
        _behaviour("logs", "resume"),
    ),
    "issue 15 item 7": (
        (
            "@timeout kills the whole task: @catch stores a generic failure, not Metaflow's "
            "TimeoutException"
        ),
        _behaviour("timeout_catch"),
    ),
    "finding 1": (
        (
            "@catch in a foreach body stores a traceback naming the task's own code folder, so "
            "the foreach join's merge_artifacts refuses identical catches as conflicting "
            "(_catch_exception); under run the join succeeds"
        ),
        lambda shape, behaviour: (
            behaviour == "catch_retry"
            and shape in ("small_foreach", "simple_foreach", "nested_foreach")
        ),
    ),
}

# What `make test` runs on each Airflow line (`--conformance=all`: the whole matrix). The newest
# line (the default environment) runs every shape and every behaviour at least once; the
# known failures are cheap there (they stop early). Airflow 2.11 runs three flows that cover
# foreach, nested foreach, switch, parameters and @retry/@catch; 3.0 and 2.10 run the first.
CI: tuple[tuple[str, str], ...] = (
    ("linear", "current"),
    ("linear", "catch_retry"),
    ("linear", "include_file"),
    ("linear", "timeout_catch"),
    ("branch", "artifacts"),
    ("branch", "logs"),
    ("nested_branches", "tags"),
    ("small_foreach", "config"),
    ("simple_foreach", "parameters"),
    ("wide_foreach", "artifacts"),
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
    version = Version(airflow_version)
    if version >= Version("3.3"):
        return CI
    if Version("2.11") <= version < Version("3.0"):
        return SMALL
    return SMALL[:1]


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
