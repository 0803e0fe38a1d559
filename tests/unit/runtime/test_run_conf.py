"""A run's conf is untrusted: what cannot reach a step as an environment variable, and keys
that are no Parameter, are named before anything runs."""

from __future__ import annotations

import pytest
from manifests import ALL_PARAMETER_TYPES

from metaflow_airflow.manifest.base import MAX_JSON_DEPTH
from metaflow_airflow.runtime.run_conf import MAX_VALUE_BYTES, run_conf_problems


def problems(conf: dict) -> tuple[list[str], list[str]]:
    return run_conf_problems(ALL_PARAMETER_TYPES, conf)


def nested(depth: int) -> list:
    value: list = []
    for _ in range(depth - 1):
        value = [value]
    return value


def test_values_that_reach_the_step_pass() -> None:
    conf = {"alpha": 0.25, "flag": True, "n": 7, "obj": {"a": [1, {"b": None}]},
            "text": "it's $(whoami) `id`; {{ ds }} ünïcode"}
    assert problems(conf) == ([], [])
    assert problems({"obj": nested(MAX_JSON_DEPTH)}) == ([], [])
    assert problems({"obj": {"k": "a\x00b"}}) == ([], [])  # JSON text escapes it: \u0000
    # An emptied field of the trigger form: the parameter keeps its default.
    assert problems({"alpha": None, "flag": None, "n": None}) == ([], [])


@pytest.mark.parametrize(
    ("conf", "message"),
    [
        ({"text": "a\x00b"}, "parameter 'text': contains a NUL character"),
        ({"text": "x" * (MAX_VALUE_BYTES + 1)}, f"at most {MAX_VALUE_BYTES}"),
        ({"text": "lone \ud800 surrogate"}, "parameter 'text': is not valid Unicode text"),
        ({"obj": nested(MAX_JSON_DEPTH + 1)}, "parameter 'obj': is nested deeper than"),
        ({"obj": nested(5000)}, "parameter 'obj': is nested deeper than"),
        ({"n": "seven"}, "parameter 'n': expects an integer, got 'seven' (str)"),
        ({"alpha": [0.5]}, "parameter 'alpha': expects a number, got [0.5] (list)"),
    ],
)
def test_values_that_cannot_reach_the_step_are_named(conf: dict, message: str) -> None:
    refused, unknown = problems(conf)
    assert unknown == []
    assert len(refused) == 1 and message in refused[0], refused


def test_keys_that_are_no_parameter_are_named_with_the_parameters() -> None:
    refused, unknown = problems({"cout": 5, "n": 5})
    assert refused == []
    assert unknown == [
        "'cout' is not a parameter of this flow (its parameters: alpha, flag, n, obj, text)"
    ]
