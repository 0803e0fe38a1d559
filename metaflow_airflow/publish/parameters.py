"""Metaflow Parameters → typed parameter specs (Airflow Params on the other side)."""

from __future__ import annotations

import json
from typing import Any

from metaflow._vendor import click
from metaflow.includefile import FilePathClass
from metaflow.parameters import JSONTypeClass, Parameter, deploy_time_eval

from metaflow_airflow.errors import CompileError
from metaflow_airflow.manifest.models import ParameterSpec

_PYTHON_TYPES = {str: "str", int: "int", float: "float", bool: "bool"}
# How Metaflow's CLI reads a value of each type from text.
_CLICK_TYPES = {"int": click.INT, "float": click.FLOAT, "bool": click.BOOL}


def compile_parameters(flow: Any) -> tuple[ParameterSpec, ...]:
    """Metaflow Parameters → typed specs; deploy-time defaults are evaluated once, here."""
    _refuse_reserved_attributes(flow)
    specs = []
    for _, param in flow._get_parameters():
        if param.IS_CONFIG_PARAMETER:  # fixed at publish: see flow_process.config_env
            continue
        kwargs = param.kwargs
        try:
            default = deploy_time_eval(kwargs.get("default"))
        except Exception as exc:  # a user function: report it, whatever it raised
            raise CompileError(
                f"parameter {param.name!r}: evaluating its deploy-time default failed: {exc}"
            ) from exc
        kind = _parameter_type(param.name, kwargs.get("type"), default)
        if kind == "json" and isinstance(default, str):
            default = _parse_json_default(param.name, default)
        elif kind in _CLICK_TYPES and isinstance(default, str):  # e.g. a deploy-time default
            default = _typed_default(param.name, kind, default)
        specs.append(
            ParameterSpec(
                name=param.name,
                type=kind,
                default=default,
                required=bool(kwargs.get("required")) and default is None,
                help=kwargs.get("help") or "",
            )
        )
    order = _declaration_order(flow)
    return tuple(sorted(specs, key=lambda p: (order.get(p.name, len(order)), p.name)))


def _declaration_order(flow: Any) -> dict[str, int]:
    """Parameter name → its place in the flow's source (base classes first): the order the
    Params form shows them in. Metaflow itself lists them alphabetically."""
    order: dict[str, int] = {}
    for klass in reversed(type(flow).__mro__):
        for value in vars(klass).values():
            if isinstance(value, Parameter) and value.name not in order:
                order[value.name] = len(order)
    return order


def _refuse_reserved_attributes(flow: Any) -> None:
    """Metaflow skips a Parameter held by one of FlowSpec's own attribute names (``name``,
    ``input``, ``index``...) — under ``run`` too — so it would vanish from the manifest and the
    Params form without a word."""
    for attribute in sorted(type(flow)._NON_PARAMETERS):
        value = getattr(type(flow), attribute, None)
        if isinstance(value, Parameter):
            raise CompileError(
                f"the attribute {attribute!r} holds Parameter {value.name!r}, but Metaflow "
                f"ignores Parameters on FlowSpec's own attribute names "
                f"({', '.join(sorted(type(flow)._NON_PARAMETERS))}); rename the attribute, "
                f"e.g. `{attribute}_ = Parameter({value.name!r}, ...)` (the Parameter's name "
                "can stay)"
            )


def _parameter_type(name: str, declared: Any, default: Any) -> str:
    if isinstance(declared, JSONTypeClass):
        return "json"
    if isinstance(declared, FilePathClass):
        # IncludeFile: its default was read and saved to the datastore at publish
        # (deploy_time_eval), and the value is the text that tells a task where.
        return "str"
    if declared in _PYTHON_TYPES:
        return _PYTHON_TYPES[declared]
    if declared is None and type(default) in _PYTHON_TYPES:
        return _PYTHON_TYPES[type(default)]
    raise CompileError(
        f"parameter {name!r}: type {getattr(declared, '__name__', declared)!r} is not supported "
        "on Airflow (use str, int, float, bool or JSONType)"
    )


def _typed_default(name: str, kind: str, text: str) -> Any:
    """A default given as text (Metaflow hands deploy-time defaults back as text), read as
    Metaflow's CLI reads a value of that type."""
    try:
        return _CLICK_TYPES[kind].convert(text, None, None)
    except click.BadParameter as exc:
        raise CompileError(f"parameter {name!r}: its default {text!r} is not a {kind}") from exc


def _parse_json_default(name: str, text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError as exc:
        raise CompileError(f"parameter {name!r}: its JSONType default is not JSON: {exc}") from exc


def refuse_required_parameters(decorators: str, parameters: tuple[ParameterSpec, ...]) -> None:
    """Airflow refuses to load a scheduled DAG (on times or on Assets) with a Param that has no
    default: nobody would be there to give it."""
    required = [p.name for p in parameters if p.required]
    if required:
        raise CompileError(
            f"{decorators}: parameter {required[0]!r} has no default; Airflow schedules a DAG "
            "only when every Param has a default"
        )
