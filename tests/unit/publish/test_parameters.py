"""compile_parameters on real Metaflow Parameters (initialised as Metaflow's CLI initialises
them): Airflow Param types, deploy-time and JSON defaults, required parameters, refusals."""

from __future__ import annotations

import pytest
from metaflow import Config, FlowSpec, JSONType, Parameter
from metaflow_start import TwoSteps, fresh_metaflow_state, start_flow  # noqa: F401 (a fixture)

from metaflow_airflow.errors import CompileError
from metaflow_airflow.manifest.models import ParameterSpec
from metaflow_airflow.publish.parameters import compile_parameters, refuse_required_parameters

pytestmark = pytest.mark.usefixtures("fresh_metaflow_state")


def compiled(flow_cls: type[FlowSpec]) -> dict[str, ParameterSpec]:
    return {p.name: p for p in compile_parameters(start_flow(flow_cls).flow)}


class TypesFlow(TwoSteps):
    # Metaflow lists Parameters by attribute name, here not the order of their names.
    p1 = Parameter("text", type=str, default="hello", help="Some text.")
    p2 = Parameter("count", type=int, default=3)
    p3 = Parameter("ratio", type=float, default=0.5)
    p4 = Parameter("loud", type=bool, default=False)
    p5 = Parameter("config", type=JSONType, default='{"colors": ["red", "green"]}')
    p6 = Parameter("mapping", type=JSONType, default={"a": [1]})


def test_every_type_and_its_default() -> None:
    params = compiled(TypesFlow)
    assert {name: (p.type, p.default) for name, p in params.items()} == {
        "text": ("str", "hello"),
        "count": ("int", 3),
        "ratio": ("float", 0.5),
        "loud": ("bool", False),
        "config": ("json", {"colors": ["red", "green"]}),  # JSON text, parsed once here
        "mapping": ("json", {"a": [1]}),
    }
    assert params["text"].help == "Some text." and params["count"].help == ""
    assert not any(p.required for p in params.values())


class InferredFlow(TwoSteps):
    n = Parameter("n", default=7)
    alpha = Parameter("alpha", default=1.5)
    flag = Parameter("flag", default=True)
    untyped = Parameter("untyped")


def test_types_inferred_from_defaults_as_metaflow_does() -> None:
    params = compiled(InferredFlow)
    assert {name: p.type for name, p in params.items()} == {
        "n": "int",
        "alpha": "float",
        "flag": "bool",
        "untyped": "str",
    }
    assert params["untyped"].default is None and not params["untyped"].required


class RequiredFlow(TwoSteps):
    text = Parameter("text", required=True, help="Needed.")
    given = Parameter("given", required=True, default="x")


def test_required_only_without_a_default() -> None:
    params = compiled(RequiredFlow)
    assert params["text"] == ParameterSpec(
        name="text", type="str", default=None, required=True, help="Needed."
    )
    assert params["given"].required is False and params["given"].default == "x"


def test_a_required_parameter_blocks_scheduling() -> None:
    params = compile_parameters(start_flow(RequiredFlow).flow)
    with pytest.raises(CompileError) as refused:
        refuse_required_parameters("@schedule", params)
    assert str(refused.value).startswith("@schedule: parameter 'text' has no default")
    refuse_required_parameters("@schedule", compile_parameters(start_flow(TypesFlow).flow))


class DeployTimeFlow(TwoSteps):
    owner = Parameter("owner", default=lambda ctx: ctx.user_name)
    settings = Parameter("settings", type=JSONType, default=lambda ctx: {"flow": ctx.flow_name})


def test_deploy_time_defaults_are_evaluated_at_publish() -> None:
    params = compiled(DeployTimeFlow)
    assert (params["owner"].type, params["owner"].default) == ("str", "tester")  # METAFLOW_USER
    assert params["settings"].default == {"flow": "DeployTimeFlow"}


class TypedDeployTimeFlow(TwoSteps):
    count = Parameter("count", type=int, default=lambda ctx: 5)
    ratio = Parameter("ratio", type=float, default=lambda ctx: 0.25)
    loud = Parameter("loud", type=bool, default=lambda ctx: True)


def test_typed_deploy_time_defaults_keep_their_type() -> None:
    params = compiled(TypedDeployTimeFlow)
    assert {name: (p.type, p.default) for name, p in params.items()} == {
        "count": ("int", 5),
        "ratio": ("float", 0.25),
        "loud": ("bool", True),
    }


class TextDefaultFlow(TwoSteps):
    count = Parameter("count", type=int, default="5")


class WrongTextDefaultFlow(TwoSteps):
    wrong = Parameter("wrong", type=int, default="many")


def test_a_text_default_is_read_as_its_type_or_refused() -> None:
    """As Metaflow's CLI reads it: "5" is 5, "many" is no int (refused at publish, not at run)."""
    assert compiled(TextDefaultFlow)["count"].default == 5
    with pytest.raises(CompileError, match="parameter 'wrong': its default 'many' is not a int"):
        compiled(WrongTextDefaultFlow)


class FailingDefaultFlow(TwoSteps):
    broken = Parameter("broken", default=lambda ctx: 1 / 0)


def test_a_failing_deploy_time_default_is_a_compile_error() -> None:
    with pytest.raises(CompileError, match="parameter 'broken': evaluating its deploy-time"):
        compiled(FailingDefaultFlow)


class BadJsonFlow(TwoSteps):
    config = Parameter("config", type=JSONType, default="{colors: red}")


def test_a_json_default_that_is_not_json_is_refused() -> None:
    with pytest.raises(CompileError, match="parameter 'config': its JSONType default is not JSON"):
        compiled(BadJsonFlow)


class ListFlow(TwoSteps):
    items = Parameter("items", type=list, default=[1, 2])


def test_an_unsupported_type_is_refused() -> None:
    with pytest.raises(CompileError) as refused:
        compiled(ListFlow)
    assert "parameter 'items': type 'list' is not supported on Airflow" in str(refused.value)
    assert "str, int, float, bool or JSONType" in str(refused.value)


def test_parameters_keep_their_declaration_order() -> None:
    """The Params form lists them as the flow declares them, not as Metaflow sorts them."""
    names = [p.name for p in compile_parameters(start_flow(TypesFlow).flow)]
    assert names == ["text", "count", "ratio", "loud", "config", "mapping"]


class ConfigFlow(TwoSteps):
    settings = Config("settings", default_value={"a": {"b": 1}})
    day = Parameter("day", default="mon")


def test_a_config_is_no_run_parameter() -> None:
    """A Config is fixed at publish (METAFLOW_FLOW_CONFIG_VALUE): as a DAG Param its dict
    default failed Airflow's own validation, and every trigger of the DAG was refused."""
    assert list(compiled(ConfigFlow)) == ["day"]
