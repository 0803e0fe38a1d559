"""Metaflow flow → manifest parts. Every "not supported on Airflow" error is raised here.

Runs on the publish side, inside the flow's own Metaflow CLI process (see ``flow_process``), so
it sees the graph and decorators exactly as Metaflow resolved them (``--with``, configs, mutators).
It reads Metaflow objects and returns manifest models; it uploads nothing.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from typing import Any

from metaflow.parameters import JSONTypeClass, deploy_time_eval

from .errors import CompileError
from .manifest import ParameterSpec, Resources, StepSpec
from .support import SUPPORTED_STEP_TYPES, UNSUPPORTED_DECORATORS

_PYTHON_TYPES = {str: "str", int: "int", float: "float", bool: "bool"}


def compile_steps(graph: Any) -> tuple[StepSpec, ...]:
    """Describe each step, in Metaflow's topological order (stable for the same flow)."""
    nodes = {node.name: node for node in graph}
    return tuple(_compile_step(nodes[name], nodes) for name in graph.sorted_nodes)


def _compile_step(node: Any, nodes: dict[str, Any]) -> StepSpec:
    _refuse_unsupported(node, nodes)
    joins_foreach = None
    enclosing = list(node.split_parents)
    if node.type == "join" and enclosing:
        closed = enclosing.pop()
        if nodes[closed].type == "foreach":
            joins_foreach = closed
    enclosing_foreach = [p for p in enclosing if nodes[p].type == "foreach"]
    return StepSpec(
        name=node.name,
        type=node.type,
        parents=tuple(node.in_funcs),
        next=tuple(node.out_funcs),
        foreach=enclosing_foreach[-1] if enclosing_foreach else None,
        joins_foreach=joins_foreach,
        doc=(node.doc or "").strip(),
        decorator_specs=tuple(_runtime_decorator_specs(node.decorators)),
        max_user_code_retries=_user_code_retries(node),
        resources=_resources(node.decorators),
        image=_decorator_attribute(node.decorators, "kubernetes", "image"),
        env={str(k): str(v) for k, v in sorted(_environment(node.decorators).items())},
    )


def _refuse_unsupported(node: Any, nodes: dict[str, Any]) -> None:
    if node.type not in SUPPORTED_STEP_TYPES:
        raise CompileError(f"step {node.name!r}: {node.type!r} steps are not supported on Airflow")
    if getattr(node, "parallel_foreach", False) or getattr(node, "parallel_step", False):
        raise CompileError(
            f"step {node.name!r}: @parallel steps are not supported on Airflow: "
            + UNSUPPORTED_DECORATORS["parallel"]
        )
    for deco in node.decorators:
        if deco.name in UNSUPPORTED_DECORATORS:
            raise CompileError(
                f"step {node.name!r}: @{deco.name} is not supported on Airflow: "
                + UNSUPPORTED_DECORATORS[deco.name]
            )
    depth = sum(1 for p in node.split_parents if nodes[p].type == "foreach")
    if node.type == "foreach":
        depth += 1
    if depth > 1:
        raise CompileError(
            f"step {node.name!r}: a foreach nested inside another foreach is not supported yet"
        )


def _runtime_decorator_specs(decorators: Iterable[Any]) -> Iterator[str]:
    """Decorators added with ``--with`` at publish must be added again in every task."""
    for deco in decorators:
        if not getattr(deco, "statically_defined", True) and getattr(deco, "inserted_by", None) is None:
            yield deco.make_decorator_spec()


def _user_code_retries(node: Any) -> int:
    retries = 0
    for deco in node.decorators:
        user, _ = deco.step_task_retry_count()
        retries = max(retries, int(user or 0))
    return retries


def _decorator_attribute(decorators: Iterable[Any], name: str, attribute: str) -> Any:
    for deco in decorators:
        if deco.name == name:
            return deco.attributes.get(attribute)
    return None


def _environment(decorators: Iterable[Any]) -> dict[str, Any]:
    return _decorator_attribute(decorators, "environment", "vars") or {}


def _resources(decorators: Iterable[Any]) -> Resources:
    """The largest request among @resources and @kubernetes, as Metaflow itself resolves them."""
    values: dict[str, float] = {}
    for deco in decorators:
        if deco.name not in ("resources", "kubernetes"):
            continue
        for key in ("cpu", "memory", "disk", "gpu"):
            raw = deco.attributes.get(key)
            if raw is None:
                continue
            values[key] = max(values.get(key, 0), float(raw))
    defaults = Resources()
    return Resources(
        cpu=values.get("cpu", defaults.cpu),
        memory_mb=int(values.get("memory", defaults.memory_mb)),
        disk_mb=int(values.get("disk", defaults.disk_mb)),
        gpu=int(values.get("gpu", defaults.gpu)),
    )


def compile_parameters(flow: Any) -> tuple[ParameterSpec, ...]:
    """Metaflow Parameters → typed specs; deploy-time defaults are evaluated once, here."""
    specs = []
    for _, param in flow._get_parameters():
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
        specs.append(
            ParameterSpec(
                name=param.name,
                type=kind,
                default=default,
                required=bool(kwargs.get("required")) and default is None,
                help=kwargs.get("help") or "",
            )
        )
    return tuple(sorted(specs, key=lambda p: p.name))


def _parameter_type(name: str, declared: Any, default: Any) -> str:
    if isinstance(declared, JSONTypeClass):
        return "json"
    if declared in _PYTHON_TYPES:
        return _PYTHON_TYPES[declared]
    if declared is None and type(default) in _PYTHON_TYPES:
        return _PYTHON_TYPES[type(default)]
    raise CompileError(
        f"parameter {name!r}: type {getattr(declared, '__name__', declared)!r} is not supported "
        "on Airflow (use str, int, float, bool or JSONType)"
    )


def _parse_json_default(name: str, text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError as exc:
        raise CompileError(f"parameter {name!r}: its JSONType default is not JSON: {exc}") from exc
