"""Metaflow flow → manifest parts. Every "not supported on Airflow" error is raised here.

Runs on the publish side, inside the flow's own Metaflow CLI process (see ``flow_process``), so
it sees the graph and decorators exactly as Metaflow resolved them (``--with``, configs, mutators).
It reads Metaflow objects and returns manifest models; it uploads nothing.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
from typing import Any

from metaflow import current
from metaflow.exception import MetaflowException
from metaflow.parameters import JSONTypeClass, deploy_time_eval
from metaflow.plugins.kubernetes.kubernetes_decorator import KubernetesDecorator
from metaflow.plugins.timeout_decorator import get_run_time_limit_for_task

from metaflow_airflow.errors import CompileError
from metaflow_airflow.manifest.models import (
    ASSET_NAME_PATTERN,
    EventTrigger,
    ExternalTaskSensorSpec,
    FlowTrigger,
    ParameterSpec,
    PodSpec,
    Resources,
    S3KeySensorSpec,
    ScheduleSpec,
    StepSpec,
    Tmpfs,
    event_asset_uri,
    flow_asset_uri,
)
from metaflow_airflow.publish.support import SUPPORTED_STEP_TYPES, UNSUPPORTED_DECORATORS

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
    """What ``@kubernetes`` with no arguments resolves to under this Metaflow configuration,
    with ``publish --image`` as the default image."""
    deco = KubernetesDecorator(attributes={}, statically_defined=False)
    deco.init()
    defaults = dict(deco.attributes)
    defaults["metaflow_default_image"] = defaults["image"]
    if image:
        defaults["image"] = image
    return defaults


def _pod(node: Any, defaults: dict[str, Any]) -> PodSpec:
    own = dict(next((d.attributes for d in node.decorators if d.name == "kubernetes"), {}))
    if own.get("image") == defaults["metaflow_default_image"]:
        del own["image"]  # Metaflow filled in its default: publish --image takes precedence
    a = {**defaults, **{k: v for k, v in own.items() if v not in (None, "", [], {})}}
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


def compile_schedule(flow: Any, parameters: tuple[ParameterSpec, ...]) -> ScheduleSpec | None:
    """``@schedule`` → a five-field cron, converted the way Metaflow's Argo integration does
    (Metaflow states schedules in AWS's six-field form: drop the year, '?' becomes '*')."""
    decos = flow._flow_decorators.get("schedule")
    if not decos or not decos[0].schedule:
        return None
    fields = decos[0].schedule.split()
    if len(fields) not in (5, 6):
        raise CompileError(f"@schedule: {decos[0].schedule!r} is not a 5- or 6-field cron")
    _refuse_required_parameters("@schedule", parameters)
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


# What Metaflow's Argo Workflows integration (the one that runs these decorators) accepts.
_EVENT_NAME = re.compile(r"^[A-Za-z0-9_.-]+$")
_PAYLOAD_FIELD = re.compile(r"^[A-Za-z0-9_]+$")
# Flow decorators whose behaviour Airflow does not give (yet), and why.
UNSUPPORTED_FLOW_DECORATORS = {
    "exit_hook": "exit hooks are not supported on Airflow yet; use an Airflow on_success/"
    "on_failure callback, or a final step",
}


def refuse_unsupported_flow_decorators(flow: Any) -> None:
    for name, reason in UNSUPPORTED_FLOW_DECORATORS.items():
        if flow._flow_decorators.get(name):
            raise CompileError(f"@{name} is not supported on Airflow: {reason}")


def compile_finish_asset(flow: Any) -> str:
    """The Asset this flow's successful runs emit: named by Metaflow's project-qualified flow
    name (``project.branch.Flow`` under ``@project``), as ``@trigger_on_finish`` resolves it."""
    return flow_asset_uri(_checked_asset_name(current.get("project_flow_name") or flow.name))


def compile_triggers(
    flow: Any, parameters: tuple[ParameterSpec, ...]
) -> tuple[FlowTrigger | EventTrigger, ...]:
    """``@trigger`` and ``@trigger_on_finish`` → the Assets the DAG is scheduled on.

    Names resolve as Metaflow's Argo Workflows integration resolves them (deploy-time values
    evaluated, ``@project`` applied to upstream flows, one event without a mapping maps every
    Parameter from the payload field of its name); with several, all must have fired."""
    triggers: list[FlowTrigger | EventTrigger] = []
    triggers.extend(_event_triggers(flow, parameters))
    triggers.extend(_flow_triggers(flow))
    if triggers:
        _refuse_required_parameters("@trigger/@trigger_on_finish", parameters)
    uris = [t.asset_uri for t in triggers]
    duplicates = sorted({uri for uri in uris if uris.count(uri) > 1})
    if duplicates:
        raise CompileError(f"@trigger/@trigger_on_finish: {duplicates[0]} is listed twice")
    return tuple(triggers)


def _refuse_required_parameters(decorators: str, parameters: tuple[ParameterSpec, ...]) -> None:
    """Airflow refuses to load a scheduled DAG (on times or on Assets) with a Param that has no
    default: nobody would be there to give it."""
    required = [p.name for p in parameters if p.required]
    if required:
        raise CompileError(
            f"{decorators}: parameter {required[0]!r} has no default; Airflow schedules a DAG "
            "only when every Param has a default"
        )


def _trigger_decorator(flow: Any, name: str) -> Any | None:
    decos = flow._flow_decorators.get(name)
    if not decos:
        return None
    deco = decos[0]
    if deco.options:
        raise CompileError(
            f"@{name}(options=...) configures Argo Events; it has no meaning on Airflow "
            f"(got {sorted(deco.options)})"
        )
    try:
        deco.format_deploytime_value()
    except MetaflowException as exc:  # a deploy-time function gave an unusable value
        raise CompileError(f"@{name}: {str(exc).strip()}") from exc
    return deco


def _event_triggers(flow: Any, parameters: tuple[ParameterSpec, ...]) -> Iterator[EventTrigger]:
    deco = _trigger_decorator(flow, "trigger")
    if deco is None:
        return
    by_lower_name = {p.name.lower(): p.name for p in parameters}
    mapped: set[str] = set()
    events = []
    for event in deco.triggers:
        name = event["name"]
        if not isinstance(name, str) or not _EVENT_NAME.match(name):
            raise CompileError(
                f"@trigger: invalid event name {name!r}: only letters, digits, '_', '-' and "
                "'.' are allowed"
            )
        mapping = {}
        for parameter, field in (event.get("parameters") or {}).items():
            if not _PAYLOAD_FIELD.match(field):
                raise CompileError(
                    f"@trigger: invalid payload field {field!r} for event {name!r}: only "
                    "letters, digits and '_' are allowed"
                )
            if parameter.lower() not in by_lower_name:
                raise CompileError(
                    f"@trigger: event {name!r} maps the payload field {field!r} to "
                    f"{parameter!r}, which is not a Parameter of this flow"
                )
            if parameter.lower() in mapped:
                raise CompileError(f"@trigger: parameter {parameter!r} is mapped twice")
            mapped.add(parameter.lower())
            mapping[by_lower_name[parameter.lower()]] = field
        events.append((name, mapping))
    if len(events) == 1 and not events[0][1]:  # Metaflow maps each Parameter by its own name
        events = [(events[0][0], {p.name: p.name.lower() for p in parameters})]
    for name, mapping in events:
        yield EventTrigger(event=name, asset_uri=event_asset_uri(name), parameters=mapping)


def _flow_triggers(flow: Any) -> Iterator[FlowTrigger]:
    deco = _trigger_decorator(flow, "trigger_on_finish")
    if deco is None:
        return
    own = current.get("project_flow_name") or flow.name
    for upstream in deco.triggers:
        project = upstream.get("project") or current.get("project_name")
        branch = upstream.get("branch") or current.get("branch_name")
        if bool(project) != bool(branch):
            raise CompileError(
                f"@trigger_on_finish: flow {upstream['flow']!r} names a project without a "
                "branch (or a branch without a project): give both 'project' and "
                "'project_branch', or use @project"
            )
        name = ".".join(v for v in (project, branch, upstream["flow"]) if v)
        if name == own:
            raise CompileError(
                f"@trigger_on_finish: {name!r} is this flow itself; each run would start "
                "the next one forever"
            )
        yield FlowTrigger(flow=_checked_asset_name(name), asset_uri=flow_asset_uri(name))


def _checked_asset_name(name: str) -> str:
    if not re.fullmatch(ASSET_NAME_PATTERN, name):
        raise CompileError(
            f"flow name {name!r} cannot name an Airflow Asset (letters, digits, '_', '.', "
            "'-', '@', '+' only)"
        )
    return name
