"""Metaflow graph → step specs: shape, retries, timeout, resources, environment, pod.

Runs inside the flow's own Metaflow CLI process (see ``flow_process``), so it sees each step's
decorators exactly as Metaflow resolved them (``--with``, configs, mutators). Every "this step
cannot run on Airflow" refusal is raised here.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from metaflow.plugins.kubernetes.kubernetes_decorator import KubernetesDecorator
from metaflow.plugins.retry_decorator import RetryDecorator
from metaflow.plugins.timeout_decorator import get_run_time_limit_for_task

from metaflow_airflow.errors import CompileError
from metaflow_airflow.manifest.models import PodSpec, Resources, StepSpec, Tmpfs
from metaflow_airflow.publish.support import SUPPORTED_STEP_TYPES, UNSUPPORTED_DECORATORS


def compile_steps(
    graph: Any, *, kubernetes: bool, image: str | None = None
) -> tuple[StepSpec, ...]:
    """Describe each step, in Metaflow's topological order (stable for the same flow).

    With ``kubernetes``, each step's pod is resolved the way Metaflow resolves ``@kubernetes``
    (its attributes, else Metaflow's configuration); ``image`` replaces the default image."""
    nodes = {node.name: node for node in graph}
    _refuse_loops(nodes)
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


def _refuse_loops(nodes: dict[str, Any]) -> None:
    """A switch that can lead back to its own step (Metaflow's recursive steps) makes a loop,
    and an Airflow DAG cannot loop: run once, the flow would silently end early."""
    for name, node in sorted(nodes.items()):
        if node.type != "split-switch":
            continue
        seen: set[str] = set()
        frontier = list(node.out_funcs)
        while frontier:
            current = frontier.pop()
            if current == name:
                raise CompileError(
                    f"step {name!r}: its switch can lead back to {name!r} (a loop, as recursive "
                    "steps make), and an Airflow DAG cannot loop; unroll the loop into steps, or "
                    "loop inside the step"
                )
            if current not in seen:
                seen.add(current)
                frontier.extend(nodes[current].out_funcs)


def _refuse_unsupported(node: Any, nodes: dict[str, Any]) -> None:
    if node.type not in SUPPORTED_STEP_TYPES:
        raise CompileError(f"step {node.name!r}: {node.type!r} steps are not supported on Airflow")
    if getattr(node, "parallel_foreach", False) or getattr(node, "parallel_step", False):
        # The step that calls self.next(num_parallel=...) is met first: name the @parallel one.
        parallel = node.out_funcs[0] if getattr(node, "parallel_foreach", False) else node.name
        raise CompileError(
            f"step {parallel!r}: @parallel steps are not supported on Airflow: "
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
        added_at_publish = not getattr(deco, "statically_defined", True)
        if added_at_publish and getattr(deco, "inserted_by", None) is None:
            yield deco.make_decorator_spec()


def _retries(decorators: Iterable[Any]) -> tuple[int, int]:
    """(user code retries, platform error retries): the largest any decorator asks for."""
    user, error = 0, 0
    for deco in decorators:
        deco_user, deco_error = deco.step_task_retry_count()
        user, error = max(user, int(deco_user or 0)), max(error, int(deco_error or 0))
    return user, error


def _retry_delay_seconds(decorators: list[Any]) -> int | None:
    """``@retry``'s minutes between retries (given, or its default of 2, also for ``--with
    retry``); a step retried only by ``@catch``'s fallback waits as long, as on Argo Workflows.
    Metaflow's local runtime does not wait at all (docs/features.md)."""
    minutes = _decorator_attribute(decorators, "retry", "minutes_between_retries")
    if minutes is None:
        if sum(_retries(decorators)) == 0:
            return None
        minutes = RetryDecorator.defaults["minutes_between_retries"]
    return int(float(minutes) * 60)


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
