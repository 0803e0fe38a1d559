"""Semantic checks of a manifest that its schema cannot state: what Airflow would otherwise
refuse only when its DAG processor checks the built DAG, failing every DAG of the loader file
(a step cycle, a cron Airflow's timetable rejects, an unknown time zone).

Plain functions over plain values, so the publish side runs them before anything is uploaded
and the loader before anything is built.
"""

from __future__ import annotations

import zoneinfo
from collections.abc import Iterable, Mapping

# Each cron field's range (minute, hour, day of month, month, day of week; 7 is Sunday too),
# and the names a field may use instead of numbers.
_CRON_RANGES = ((0, 59), (0, 23), (1, 31), (1, 12), (0, 7))
_CRON_NAMES: tuple[frozenset[str], ...] = (
    frozenset(),
    frozenset(),
    frozenset(),
    frozenset("JAN FEB MAR APR MAY JUN JUL AUG SEP OCT NOV DEC".split()),
    frozenset("SUN MON TUE WED THU FRI SAT".split()),
)


def check_cron(expression: str) -> None:
    """Refuse a cron expression whose values are out of range or whose steps are not positive.
    Airflow's presets (``@daily``) and croniter's extensions (``L``, ``W``, ``#``) are left to
    Airflow, whose own check still runs inside the loader's per-manifest guard."""
    if expression.startswith("@"):
        return
    fields = expression.split()
    if len(fields) != 5:
        raise ValueError(f"{expression!r} is not a five-field cron expression")
    for position, (field, (low, high)) in enumerate(zip(fields, _CRON_RANGES)):
        for part in field.split(","):
            values, _, step = part.partition("/")
            if step and not (step.isdigit() and int(step) > 0):
                raise ValueError(f"{expression!r}: step {step!r} of field {position + 1}")
            names = _CRON_NAMES[position]
            for value in values.split("-"):
                if value.isdigit() and not low <= int(value) <= high:
                    raise ValueError(
                        f"{expression!r}: {value} is out of range for field {position + 1} "
                        f"({low}-{high})"
                    )
                if names and value.isalpha() and len(value) == 3 and value.upper() not in names:
                    raise ValueError(f"{expression!r}: unknown name {value!r}")


def check_timezone(name: str) -> None:
    """Refuse a time zone that is not an IANA name this machine knows."""
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown time zone {name!r}") from exc


def parents_cycle(parents: Mapping[str, Iterable[str]]) -> list[str]:
    """The steps on or after a cycle of ``parents`` edges (empty when the graph is acyclic):
    Airflow refuses a DAG with a cycle."""
    waiting = {step: set(of) for step, of in parents.items()}
    ready = [step for step, of in waiting.items() if not of]
    while ready:
        done = ready.pop()
        del waiting[done]
        for step, of in waiting.items():
            if done in of:
                of.discard(done)
                if not of:
                    ready.append(step)
    return sorted(waiting)
