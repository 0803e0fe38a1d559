"""A run's parameters are typed from the published manifest and refused before anything is
sent: unknown names, ill-typed values, missing required ones (rest/runs.py)."""

from __future__ import annotations

import pytest

from metaflow_airflow.errors import ParameterError
from metaflow_airflow.manifest.models import ParameterSpec
from metaflow_airflow.rest.runs import parse_param_pairs, typed_conf

PARAMS = [
    ParameterSpec(name="alpha", type="float", default=0.5),
    ParameterSpec(name="count", type="int", default=2),
    ParameterSpec(name="label", type="str", default="x"),
    ParameterSpec(name="options", type="json", default={"k": 1}),
    ParameterSpec(name="fail", type="bool", default=False),
    ParameterSpec(name="learning-rate", type="float", default=0.1),
]


def test_text_from_a_command_line_becomes_each_parameters_type():
    pairs = parse_param_pairs(
        [
            "alpha=0.25",
            "count=3",
            "label=a=b",
            'options={"k": [1, 2]}',
            "fail=true",
            "learning-rate=1e-3",
        ]
    )
    assert typed_conf(PARAMS, pairs) == {
        "alpha": 0.25,
        "count": 3,
        "label": "a=b",
        "options": {"k": [1, 2]},
        "fail": True,
        "learning-rate": 0.001,
    }


def test_python_values_from_the_deployer_keep_their_type_and_underscores_match_dashes():
    assert typed_conf(PARAMS, {"count": 4, "options": [1], "learning_rate": 2}) == {
        "count": 4,
        "options": [1],
        "learning-rate": 2.0,
    }


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"nope": "1"}, "unknown parameter 'nope' (the flow's parameters: alpha, count, "),
        ({"count": "three"}, "parameter 'count' takes an integer, not 'three'"),
        ({"count": 2.5}, "parameter 'count' takes an integer, not 2.5"),
        ({"count": True}, "parameter 'count' takes an integer, not True"),
        ({"alpha": "fast"}, "parameter 'alpha' takes a number, not 'fast'"),
        ({"fail": "maybe"}, "parameter 'fail' takes true or false, not 'maybe'"),
        ({"options": "{oops"}, "parameter 'options' takes JSON, not '{oops' (Expecting"),
    ],
)
def test_unknown_and_ill_typed_values_are_refused_in_one_line(values, message):
    with pytest.raises(ParameterError) as refused:
        typed_conf(PARAMS, values)
    assert str(refused.value).startswith(message)
    assert "\n" not in str(refused.value)


def test_a_required_parameter_without_default_needs_a_value():
    required = [ParameterSpec(name="day", type="str", required=True)]
    with pytest.raises(ParameterError, match="required parameter.*day"):
        typed_conf(required, {})
    assert typed_conf(required, {"day": "mon"}) == {"day": "mon"}


def test_a_pair_without_equals_sign_is_refused():
    with pytest.raises(ParameterError, match="expected NAME=VALUE"):
        parse_param_pairs(["alpha"])
