"""What can run on Airflow: the step shapes and decorators the compiler accepts.

Metaflow-free, so the publisher can refuse a flow from its source before starting Metaflow.
"""

from __future__ import annotations

import ast
import threading
from collections.abc import Sequence
from pathlib import Path

from metaflow_airflow.errors import CompileError

SUPPORTED_STEP_TYPES = frozenset(
    {"start", "linear", "split", "split-switch", "join", "foreach", "end"}
)

# Decorators whose compute cannot run under Airflow, and what to use instead.
UNSUPPORTED_DECORATORS = {
    "batch": "AWS Batch cannot run Airflow tasks; use @kubernetes or @resources",
    "parallel": "multi-node @parallel steps need a gang scheduler; Airflow runs one pod per task",
    "slurm": "Slurm jobs cannot run Airflow tasks; use @kubernetes or @resources",
    "snowpark": "Snowpark containers cannot run Airflow tasks; use @kubernetes or @resources",
    "nvidia": "@nvidia runs on DGX Cloud, not on Airflow; use @kubernetes(gpu=...)",
}

# Flow decorators whose behaviour Airflow does not give (yet), and why.
UNSUPPORTED_FLOW_DECORATORS = {
    "exit_hook": "exit hooks are not supported on Airflow yet; use an Airflow on_success/"
    "on_failure callback, or a final step",
}


# CPython 3.11 (until a later bug-fix release) keeps the AST builder's recursion depth per
# interpreter: when a garbage collection inside one parse runs Python code and another thread
# parses meanwhile (concurrent publish_flow calls), it fails with "SystemError: AST constructor
# recursion depth mismatch" (python/cpython#106905). One parse at a time.
_AST_LOCK = threading.Lock()


def refuse_unsupported_decorators(flow_file: Path) -> None:
    """Read the flow's source for step decorators that cannot run on Airflow.

    Runs before Metaflow: Metaflow's own checks for these decorators fire first and give
    misleading advice (e.g. "@batch requires --datastore=s3")."""
    source = flow_file.read_text(encoding="utf-8")
    try:
        with _AST_LOCK:
            tree = ast.parse(source, filename=str(flow_file))
    except SyntaxError as exc:
        raise CompileError(f"{flow_file.name}, line {exc.lineno}: {exc.msg}") from exc
    for node in ast.walk(tree):
        if not isinstance(node, ast.FunctionDef):
            continue
        names = [_decorator_name(d) for d in node.decorator_list]
        if "step" not in names:
            continue
        for name in names:
            if name in UNSUPPORTED_DECORATORS:
                raise CompileError(
                    f"step {node.name!r} (line {node.lineno}): @{name} is not supported on "
                    f"Airflow: {UNSUPPORTED_DECORATORS[name]}"
                )


def refuse_unsupported_with(with_decorators: Sequence[str]) -> None:
    """The same refusal for a decorator added to every step with ``--with`` (``batch`` or
    ``batch:cpu=2``) as for one in the source: Metaflow's own check would come first and
    steer the user to a datastore option instead."""
    for spec in with_decorators:
        name = spec.split(":", 1)[0].strip()
        if name in UNSUPPORTED_DECORATORS:
            raise CompileError(
                f"--with {spec}: @{name} is not supported on Airflow: {UNSUPPORTED_DECORATORS[name]}"
            )


def _decorator_name(decorator: ast.expr) -> str:
    target = decorator.func if isinstance(decorator, ast.Call) else decorator
    if isinstance(target, ast.Attribute):
        return target.attr
    return target.id if isinstance(target, ast.Name) else ""
