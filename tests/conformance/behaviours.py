"""The behaviours of the conformance suite: snippets of flow code (class lines, decorators, step
lines) that tests/conformance/flowgen.py puts into every graph shape, and how each behaviour
is run (the same parameters under ``run`` and on Airflow) and checked."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from shapes import Shape, Step


def _nothing(shape: Shape, step: Step) -> list[str]:
    return []


@dataclass(frozen=True)
class Behaviour:
    """One behaviour. ``decorators`` and ``code`` give a step's extra decorator lines and body
    lines; ``varying`` names artifacts whose value differs between the inputs of a join (not
    merged); ``params`` are the run's parameters (CLI options under ``run``, the run conf on
    Airflow); ``tags`` are run tags (``--tag`` under ``run``, ``publish --tag`` on Airflow);
    ``fails`` means the first run fails in ``shape.probe`` and is resumed with the fix."""

    name: str
    title: str
    imports: tuple[str, ...] = ()
    members: tuple[str, ...] = ()
    decorators: Callable[[Shape, Step], list[str]] = _nothing
    code: Callable[[Shape, Step], list[str]] = _nothing
    varying: tuple[str, ...] = ()
    params: dict[str, Any] = field(default_factory=dict)
    tags: tuple[str, ...] = ()
    fails: bool = False
    needs_file: bool = False

    def cli_args(self) -> list[str]:
        args: list[str] = []
        for name, value in self.params.items():
            args += [f"--{name}", value if isinstance(value, str) else json.dumps(value)]
        for tag in self.tags:
            args += ["--tag", tag]
        return args


def _artifacts(shape: Shape, step: Step) -> list[str]:
    value = {
        "step": step.name,
        "ints": [1, -2, 3**40],
        "text": "é ✓ 'quoted' $HOME {{ ds }}",
        "bytes": b"\x00\xff",
        "float": 2.5,
        "none": None,
        "tuple": (1, "a"),
        "set": {3, 1, 2},
    }
    lines = [f"self.art_{step.name} = {value!r}"]
    if step.name == "start":
        lines.append("self.big = list(range(50000))")
    return lines


def _parameters(shape: Shape, step: Step) -> list[str]:
    return [
        (
            f"self.params_{step.name} = "
            "(self.p_text, self.p_int, self.p_float, self.p_bool, self.p_json, self.p_default)"
        )
    ]


def _config(shape: Shape, step: Step) -> list[str]:
    return [f"self.cfg_{step.name} = (self.cfg.alpha, dict(self.cfg.nested), self.cfg['name'])"]


def _include_file(shape: Shape, step: Step) -> list[str]:
    return (
        ["self.data_seen = (len(self.data), self.data.splitlines()[0])"]
        if step.kind == "end"
        else []
    )


CURRENT_FIELDS = (
    "flow_name", "run_id", "step_name", "task_id", "retry_count", "origin_run_id", "pathspec",
    "namespace", "username", "is_running_flow", "is_production", "project_name",
    "branch_name", "project_flow_name", "parameter_names",
)  # fmt: skip


def _current(shape: Shape, step: Step) -> list[str]:
    return [
        f"self.cur_{step.name} = {{n: getattr(current, n, 'absent') for n in {CURRENT_FIELDS!r}}}",
        f"self.tags_{step.name} = sorted(current.tags)",
    ]


def _on_probe(*lines: str) -> Callable[[Shape, Step], list[str]]:
    """Lines for the shape's probe step only."""
    return lambda shape, step: list(lines) if step.name == shape.probe else []


def _logs(shape: Shape, step: Step) -> list[str]:
    where = "self.index" if step.kind != "join" and _in_foreach(shape, step) else "None"
    return [
        f"print('out of {step.name}', {where})",
        f"print('err of {step.name}', {where}, file=sys.stderr)",
        "print('ünïcode ✓ and a long line ' + 'x' * 300)",
    ]


def _in_foreach(shape: Shape, step: Step) -> bool:
    from flowgen import foreach_depth

    return foreach_depth(shape)[step.name] > 0


def _card_decorators(shape: Shape, step: Step) -> list[str]:
    return ['@card(type="blank", id="notes")'] if step.name in (shape.probe, "end") else []


def _cards(shape: Shape, step: Step) -> list[str]:
    if step.name not in (shape.probe, "end"):
        return []
    return [f"current.card['notes'].append(Markdown('# notes of {step.name}'))"]


BEHAVIOURS: dict[str, Behaviour] = {
    b.name: b
    for b in (
        Behaviour(
            "artifacts", "artifacts of many types, merge_artifacts in joins", code=_artifacts
        ),
        Behaviour(
            "parameters",
            "Parameters of every type, given and default",
            imports=("from metaflow import Parameter, JSONType",),
            members=(
                'p_text = Parameter("p_text", default="hello")',
                'p_int = Parameter("p_int", default=3, type=int)',
                'p_float = Parameter("p_float", default=0.5, type=float)',
                'p_bool = Parameter("p_bool", default=False, type=bool)',
                'p_json = Parameter("p_json", default=\'{"a": 1}\', type=JSONType)',
                'p_default = Parameter("p_default", default=11, type=int)',
            ),
            code=_parameters,
            params={
                "p_text": "it's $(echo hi) {{ ds }}",
                "p_int": 7,
                "p_float": 2.25,
                "p_bool": True,
                "p_json": {"b": [1, None]},
            },
        ),
        Behaviour(
            "config",
            "Config (Metaflow 2.13+)",
            imports=("from metaflow import Config",),
            members=(
                (
                    'cfg = Config("cfg", default_value={"alpha": 1, "nested": {"b": [1, 2]}, '
                    '"name": "c"})'
                ),
            ),
            code=_config,
        ),
        Behaviour(
            "include_file",
            "IncludeFile",
            imports=("from metaflow import IncludeFile",),
            members=('data = IncludeFile("data", default=DATA_FILE, is_text=True)',),
            code=_include_file,
            needs_file=True,
        ),
        Behaviour("tags", "run tags", code=lambda shape, step: [], tags=("conformance", "kind:x")),
        Behaviour(
            "current",
            "`current` fields",
            imports=("from metaflow import current",),
            code=_current,
            varying=("cur_{step}", "tags_{step}"),
        ),
        Behaviour(
            "catch_retry",
            "@retry then @catch",
            imports=("from metaflow import catch, current, retry",),
            decorators=_on_probe(
                '@catch(var="caught", print_exception=False)',
                "@retry(times=1, minutes_between_retries=0)",
            ),
            code=_on_probe(
                "self.attempts = current.retry_count",
                "raise RuntimeError(f'attempt {current.retry_count} of the probe fails')",
            ),
            varying=("caught", "attempts"),
        ),
        Behaviour(
            "timeout_catch",
            "@timeout caught by @catch",
            imports=("import time", "from metaflow import catch, retry, timeout"),
            decorators=_on_probe(
                '@catch(var="timed_out", print_exception=False)',
                "@retry(times=0, minutes_between_retries=0)",  # @catch's own retry: at once
                "@timeout(seconds=3)",
            ),
            code=_on_probe("self.before_sleep = True", "time.sleep(40)", "self.after_sleep = True"),
            varying=("timed_out", "before_sleep", "after_sleep"),
        ),
        Behaviour("logs", "stdout and stderr of every task", imports=("import sys",), code=_logs),
        Behaviour(
            "cards",
            "@card with content",
            imports=("from metaflow import card, current", "from metaflow.cards import Markdown"),
            decorators=_card_decorators,
            code=_cards,
        ),
        Behaviour(
            "resume",
            "resume of a failed run",
            imports=("import os",),
            code=_on_probe(
                "self.probe_ran = True",
                "if not os.environ.get('CONFORMANCE_FIXED'):",
                "    raise RuntimeError('the probe is broken until CONFORMANCE_FIXED is set')",
            ),
            fails=True,
        ),
    )
}
