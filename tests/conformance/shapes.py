"""The graph shapes of the conformance suite: the shapes Metaflow's own core tests exercise, each
a list of steps that tests/conformance/flowgen.py turns into a flow."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Step:
    """One step: ``kind`` is how it ends (``linear``, ``split``, ``foreach``, ``switch``,
    ``join``, ``end``). A foreach step iterates ``items`` (a Python expression); a switch step
    goes to ``cases[value of condition]`` (``condition`` is a Python expression); a join that
    closes a foreach keeps its inputs in split order (``ordered``); ``code`` is a line of the
    shape's own that runs first (a loop's counter)."""

    name: str
    kind: str
    next: tuple[str, ...] = ()
    items: str = ""
    condition: str = ""
    cases: dict[str, str] = field(default_factory=dict, hash=False)
    ordered: bool = False
    code: str = ""


@dataclass(frozen=True)
class Shape:
    """A graph; ``probe`` is a plain step (not a split, switch or join: @catch refuses those)
    that behaviours decorate or make fail; ``loops`` marks a shape publish must refuse."""

    name: str
    title: str
    steps: tuple[Step, ...]
    probe: str
    loops: bool = False


def _linear(name: str, to: str) -> Step:
    return Step(name, "linear", (to,))


def _join(name: str, to: str, ordered: bool = False) -> Step:
    return Step(name, "join", (to,), ordered=ordered)


END = Step("end", "end")

SHAPES: dict[str, Shape] = {
    shape.name: shape
    for shape in (
        Shape(
            "linear",
            "linear steps",
            (_linear("start", "one"), _linear("one", "end"), END),
            probe="one",
        ),
        Shape(
            "branch",
            "static split and join",
            (
                Step("start", "split", ("a", "b")),
                _linear("a", "join"),
                _linear("b", "join"),
                _join("join", "end"),
                END,
            ),
            probe="a",
        ),
        Shape(
            "nested_branches",
            "a split inside a split",
            (
                Step("start", "split", ("a", "b")),
                Step("a", "split", ("a1", "a2")),
                _linear("a1", "a_join"),
                _linear("a2", "a_join"),
                _join("a_join", "join"),
                _linear("b", "join"),
                _join("join", "end"),
                END,
            ),
            probe="a2",
        ),
        Shape(
            "small_foreach",
            "foreach with a one-step body",
            (
                Step("start", "foreach", ("body",), items="['x', 'y', 'z']"),
                _linear("body", "join"),
                _join("join", "end", ordered=True),
                END,
            ),
            probe="body",
        ),
        Shape(
            "simple_foreach",
            "foreach with a body of several steps",
            (
                _linear("start", "fan"),
                Step("fan", "foreach", ("first",), items="[3, 1, 4, 1]"),
                _linear("first", "second"),
                _linear("second", "join"),
                _join("join", "end", ordered=True),
                END,
            ),
            probe="second",
        ),
        Shape(
            "wide_foreach",
            "wide foreach (16 splits)",
            (
                Step("start", "foreach", ("body",), items="list(range(16))"),
                _linear("body", "join"),
                _join("join", "after", ordered=True),
                _linear("after", "end"),
                END,
            ),
            probe="after",
        ),
        Shape(
            "nested_foreach",
            "nested foreach (uneven inner widths)",
            (
                Step("start", "foreach", ("mid",), items="[1, 2, 3]"),
                Step("mid", "foreach", ("leaf",), items="list(range(self.input))"),
                _linear("leaf", "inner_join"),
                _join("inner_join", "outer_join", ordered=True),
                _join("outer_join", "end", ordered=True),
                END,
            ),
            probe="leaf",
        ),
        Shape(
            "switch",
            "conditional (switch)",
            (
                Step("start", "switch", condition="'no'", cases={"yes": "a", "no": "b"}),
                _linear("a", "merge"),
                _linear("b", "b_more"),
                _linear("b_more", "merge"),
                _linear("merge", "end"),
                END,
            ),
            probe="b_more",
        ),
        Shape(
            "nested_switch",
            "a switch inside a switch",
            (
                Step("start", "switch", condition="'x'", cases={"x": "a", "y": "b"}),
                Step("a", "switch", condition="'q'", cases={"p": "a1", "q": "a2"}),
                _linear("a1", "a_merge"),
                _linear("a2", "a_merge"),
                _linear("a_merge", "merge"),
                _linear("b", "merge"),
                _linear("merge", "end"),
                END,
            ),
            probe="a2",
        ),
        Shape(
            "switch_in_branch",
            "a switch inside a static split",
            (
                Step("start", "split", ("a", "b")),
                Step("a", "switch", condition="'d'", cases={"c": "c", "d": "d"}),
                _linear("b", "join"),
                _linear("c", "join"),
                _linear("d", "join"),
                _join("join", "end"),
                END,
            ),
            probe="b",
        ),
        Shape(
            "switch_in_foreach",
            "a switch inside a foreach body",
            (
                _linear("start", "fan"),
                Step("fan", "foreach", ("decide",), items="[1, 2, 3, 4]"),
                Step(
                    "decide",
                    "switch",
                    condition="'even' if self.input % 2 == 0 else 'odd'",
                    cases={"even": "even", "odd": "odd"},
                ),
                _linear("even", "join"),
                _linear("odd", "join"),
                _join("join", "end", ordered=True),
                END,
            ),
            probe="start",
        ),
        Shape(
            "foreach_in_switch",
            "a foreach inside a switch",
            (
                Step("start", "switch", condition="'many'", cases={"many": "fan", "none": "skip"}),
                Step("fan", "foreach", ("body",), items="['p', 'q', 'r']"),
                _linear("body", "fan_join"),
                _join("fan_join", "merge", ordered=True),
                _linear("skip", "merge"),
                _linear("merge", "end"),
                END,
            ),
            probe="merge",
        ),
        Shape(
            "recursive_switch",
            "recursive switch (a loop)",
            (
                _linear("start", "loop"),
                Step(
                    "loop",
                    "switch",
                    condition="'again' if self.laps < 3 else 'done'",
                    cases={"again": "loop", "done": "after"},
                    code="self.laps = getattr(self, 'laps', 0) + 1",
                ),
                _linear("after", "end"),
                END,
            ),
            probe="after",
            loops=True,
        ),
    )
}
