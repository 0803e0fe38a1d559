"""Writes the flow of one graph shape with one behaviour: every step records the path it came
by (``trail``; a join keeps its inputs' trails, in split order for a foreach), steps inside a
foreach record their index, joins merge the rest with ``merge_artifacts``, and the behaviour
adds its decorators and lines."""

from __future__ import annotations

from functools import cache
from pathlib import Path

from behaviours import Behaviour
from shapes import Shape, Step

INDENT = " " * 8


def flow_name(shape: Shape, behaviour: Behaviour) -> str:
    words = f"{shape.name}_{behaviour.name}".split("_")
    return "C" + "".join(word.capitalize() for word in words) + "Flow"


@cache
def foreach_depth(shape: Shape) -> dict[str, int]:
    """How many foreach splits each step runs inside (0 outside any foreach)."""
    steps = {step.name: step for step in shape.steps}
    depth = {"start": 0}
    frontier = ["start"]
    while frontier:
        step = steps[frontier.pop()]
        for child in _targets(step):
            inner = depth[step.name] + (step.kind == "foreach") - steps[child].ordered
            if child not in depth:
                depth[child] = inner
                frontier.append(child)
    return depth


def _targets(step: Step) -> tuple[str, ...]:
    return tuple(step.cases.values()) if step.kind == "switch" else step.next


def _varying(shape: Shape, behaviour: Behaviour) -> list[str]:
    names = ["trail"]
    for kind in ("at", "items", "route"):  # split indexes, a foreach's list, a switch's choice
        names += [f"{kind}_{step.name}" for step in shape.steps]
    for pattern in behaviour.varying:
        names += sorted({pattern.format(step=step.name) for step in shape.steps})
    return names


def _base(shape: Shape, step: Step, behaviour: Behaviour) -> list[str]:
    lines = [step.code] if step.code else []
    if step.kind == "join":
        trails = "[list(i.trail) for i in inputs]"
        parents = [other for other in shape.steps if step.name in _targets(other)]
        if not step.ordered or len(parents) > 1:  # "join input order" of differential.py
            trails = f"sorted({trails}, key=repr)"
        lines.append(f"self.trail = [{trails}, {step.name!r}]")
        lines.append(f"self.merge_artifacts(inputs, exclude={_varying(shape, behaviour)!r})")
    elif step.name == "start":
        lines.append("self.trail = ['start']")
    else:
        lines.append(f"self.trail = self.trail + [{step.name!r}]")
    if step.kind != "join" and foreach_depth(shape)[step.name] > 0:
        lines.append(f"self.at_{step.name} = self.index")
    return lines


def _transition(step: Step) -> str:
    if step.kind == "end":
        return "pass"
    if step.kind == "foreach":
        return f"self.items_{step.name} = {step.items}\n{INDENT}" + (
            f"self.next(self.{step.next[0]}, foreach='items_{step.name}')"
        )
    if step.kind == "switch":
        cases = ", ".join(f"{key!r}: self.{to}" for key, to in step.cases.items())
        return f"self.route_{step.name} = {step.condition}\n{INDENT}" + (
            f"self.next({{{cases}}}, condition='route_{step.name}')"
        )
    return "self.next(" + ", ".join(f"self.{to}" for to in step.next) + ")"


def render(shape: Shape, behaviour: Behaviour, data_file: Path | None = None) -> str:
    """The source of the flow ``flow_name(shape, behaviour)``."""
    name = flow_name(shape, behaviour)
    out = ["from metaflow import FlowSpec, step", *behaviour.imports, ""]
    if data_file is not None:
        out += [f"DATA_FILE = {str(data_file)!r}", ""]
    out += ["", f"class {name}(FlowSpec):"]
    out += [f"    {member}" for member in behaviour.members]
    for step in shape.steps:
        out += ["", *(f"    {line}" for line in behaviour.decorators(shape, step)), "    @step"]
        out.append(f"    def {step.name}(self{', inputs' if step.kind == 'join' else ''}):")
        body = _base(shape, step, behaviour) + behaviour.code(shape, step)
        out += [INDENT + line for line in body]
        out.append(INDENT + _transition(step))
    out += ["", "", 'if __name__ == "__main__":', f"    {name}()", ""]
    return "\n".join(out)


def write_flow(shape: Shape, behaviour: Behaviour, folder: Path) -> Path:
    """Write the flow (and the file an IncludeFile reads) into ``folder``; returns its path."""
    folder.mkdir(parents=True, exist_ok=True)
    data_file = None
    if behaviour.needs_file:
        data_file = folder / "data.txt"
        data_file.write_text("first line of the included file\n" + "row\n" * 100)
    path = folder / f"{shape.name}_{behaviour.name}_flow.py"
    path.write_text(render(shape, behaviour, data_file))
    return path
