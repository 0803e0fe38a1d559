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
from metaflow.plugins.kubernetes.kubernetes_decorator import KubernetesDecorator
from metaflow.plugins.timeout_decorator import get_run_time_limit_for_task

from .errors import CompileError
from .manifest import (
    ExternalTaskSensorSpec,
    ParameterSpec,
    PodSpec,
    Resources,
    S3KeySensorSpec,
    ScheduleSpec,
    StepSpec,
    Tmpfs,
)
from .support import SUPPORTED_STEP_TYPES, UNSUPPORTED_DECORATORS

_PYTHON_TYPES = {str: "str", int: "int", float: "float", bool: "bool"}


def compile_steps(graph: Any, *, kubernetes: bool, image: str | None = None) -> tuple[StepSpec, ...]:
    """Describe each step, in Metaflow's topological order (stable for the same flow).

    With ``kubernetes``, each step's pod is resolved the way Metaflow resolves ``@kubernetes``
    (its attributes, else Metaflow's configuration); ``image`` replaces the default image."""
    nodes = {node.name: node for node in graph}
    defaults = _kubernetes_defaults(image) if kubernetes else None
    return tuple(_compile_step(nodes[name], nodes, defaults) for name in graph.sorted_nodes)


def _compile_step(node: Any, nodes: dict[str, Any], pod_defaults: dict | None) -> StepSpec:
    _refuse_unsupported(node, nodes)
    joins_foreach = None
    enclosing = list(node.split_parents)
    if node.type == "join" and enclosing:
        closed = enclosing.pop()
        if nodes[closed].type == "foreach":
            joins_foreach = closed
    enclosing_foreach = [p for p in enclosing if nodes[p].type == "foreach"]
    user_retries, error_retries = _retries(node.decorators)
    return StepSpec(
        name=node.name,
        type=node.type,
        parents=tuple(node.in_funcs),
        next=tuple(node.out_funcs),
        foreach=enclosing_foreach[-1] if enclosing_foreach else None,
        joins_foreach=joins_foreach,
        doc=(node.doc or "").strip(),
        decorator_specs=tuple(_runtime_decorator_specs(node.decorators)),
        max_user_code_retries=user_retries,
        retries=user_retries + error_retries,
        retry_delay_seconds=_retry_delay_seconds(node.decorators),
        timeout_seconds=_timeout_seconds(node.decorators),
        resources=_resources(node.decorators),
        pod=_pod(node, pod_defaults) if pod_defaults is not None else PodSpec(),
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


def _retries(decorators: Iterable[Any]) -> tuple[int, int]:
    """(user code retries, platform error retries): the largest any decorator asks for."""
    user, error = 0, 0
    for deco in decorators:
        deco_user, deco_error = deco.step_task_retry_count()
        user, error = max(user, int(deco_user or 0)), max(error, int(deco_error or 0))
    return user, error


def _retry_delay_seconds(decorators: Iterable[Any]) -> int | None:
    minutes = _decorator_attribute(decorators, "retry", "minutes_between_retries")
    return None if minutes is None else int(float(minutes) * 60)


def _timeout_seconds(decorators: list[Any]) -> int | None:
    if not any(deco.name == "timeout" for deco in decorators):
        return None
    return int(get_run_time_limit_for_task(decorators))


def _decorator_attribute(decorators: Iterable[Any], name: str, attribute: str) -> Any:
    """An attribute of the step's first decorator called ``name`` (None without one)."""
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


def _kubernetes_defaults(image: str | None) -> dict[str, Any]:
    """What ``@kubernetes`` with no arguments resolves to under this Metaflow configuration."""
    attributes = {"image": image} if image else {}
    deco = KubernetesDecorator(attributes=attributes, statically_defined=False)
    deco.init()
    return dict(deco.attributes)


def _pod(node: Any, defaults: dict[str, Any]) -> PodSpec:
    own = next((d.attributes for d in node.decorators if d.name == "kubernetes"), None)
    a = {**defaults, **{k: v for k, v in (own or {}).items() if v not in (None, "", [], {})}}
    tmpfs = None
    if a.get("use_tmpfs") or a.get("tmpfs_size"):
        size = a.get("tmpfs_size") or int(float(a["memory"])) // 2
        tmpfs = Tmpfs(size_mb=int(size), path=a.get("tmpfs_path") or "/metaflow_temp")
    return PodSpec(
        image=a.get("image"),
        image_pull_policy=a.get("image_pull_policy"),
        image_pull_secrets=tuple(_as_list(a.get("image_pull_secrets"))),
        namespace=a.get("namespace") or "default",
        service_account=a.get("service_account"),
        secrets=tuple(_as_list(a.get("secrets"))),
        node_selector={str(k): str(v) for k, v in (a.get("node_selector") or {}).items()},
        tolerations=tuple(a.get("tolerations") or ()),
        labels={str(k): str(v) for k, v in (a.get("labels") or {}).items()},
        annotations={str(k): str(v) for k, v in (a.get("annotations") or {}).items()},
        persistent_volume_claims=dict(a.get("persistent_volume_claims") or {}),
        tmpfs=tmpfs,
        shared_memory_mb=int(a["shared_memory"]) if a.get("shared_memory") else None,
        security_context=dict(a.get("security_context") or {}),
        gpu_vendor=a.get("gpu_vendor") or "nvidia",
    )


def _as_list(value: Any) -> list[str]:
    if not value:
        return []
    if isinstance(value, str):
        return [v.strip() for v in value.split(",") if v.strip()]
    return [str(v) for v in value]


def compile_schedule(flow: Any) -> ScheduleSpec | None:
    """``@schedule`` → a five-field cron, converted the way Metaflow's Argo integration does
    (Metaflow states schedules in AWS's six-field form: drop the year, '?' becomes '*')."""
    decos = flow._flow_decorators.get("schedule")
    if not decos or not decos[0].schedule:
        return None
    fields = decos[0].schedule.split()
    if len(fields) not in (5, 6):
        raise CompileError(f"@schedule: {decos[0].schedule!r} is not a 5- or 6-field cron")
    cron = " ".join(fields[:5]).replace("?", "*")
    return ScheduleSpec(cron=cron, timezone=decos[0].timezone or None)


def compile_sensors(flow: Any) -> tuple[ExternalTaskSensorSpec | S3KeySensorSpec, ...]:
    """Metaflow's flow-level Airflow sensors, in declaration order, named as Metaflow names them."""
    sensors = []
    for name, spec_class in (
        ("airflow_external_task_sensor", ExternalTaskSensorSpec),
        ("airflow_s3_key_sensor", S3KeySensorSpec),
    ):
        for deco in flow._flow_decorators.get(name) or []:
            attributes = {k: v for k, v in deco.attributes.items() if v is not None}
            attributes.pop("name", None)
            description = attributes.pop("description", None)
            delta = attributes.pop("execution_delta", None)
            if delta is not None:
                attributes["execution_delta_seconds"] = delta.total_seconds()
            for key in ("external_task_ids", "allowed_states", "failed_states"):
                if isinstance(attributes.get(key), str):
                    attributes[key] = [attributes[key]]
            sensors.append(
                spec_class(task_id=deco._airflow_task_name, doc=description, **attributes)
            )
    return tuple(sensors)


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
