"""The conformance table of docs/features.md, made from the suite's own tables (shapes,
behaviours, known failures, documented differences), so the page says what the suite checks
and cannot drift (tests/conformance/test_features_doc.py compares them).

    PYTHONPATH=. .venv/bin/python tests/conformance/features_doc.py --write
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from behaviours import BEHAVIOURS
from differential import DOCUMENTED_DIFFERENCES
from matrix import KNOWN_FAILURES, combinations, known_failures
from shapes import SHAPES

FEATURES = Path(__file__).resolve().parents[2] / "docs" / "features.md"
BEGIN = "<!-- conformance: begin (tests/conformance/features_doc.py --write) -->"
END = "<!-- conformance: end -->"


def _short(labels: list[str]) -> str:
    return "✗ " + ", ".join(label.removeprefix("issue 15 ") for label in labels)


def _cell(shape: str, behaviour: str) -> str:
    labels = known_failures(shape, behaviour)
    return _short(labels) if labels else "✓"


def block() -> str:
    """The generated part of docs/features.md, markers included."""
    names = list(BEHAVIOURS)
    lines = [
        BEGIN,
        "",
        (
            "Each graph shape below runs with each behaviour under `python flow.py run` and on "
            "Airflow (local compute, same parameters), and the two runs are compared through "
            "Metaflow's Client: tasks per step, every artifact of every task, task success, stdout "
            "and stderr, cards, run tags and `Run.successful`; a DagRun that succeeds must have run "
            "Metaflow's `end`. `make test` runs a subset on Airflow 3.3 and 2.11, "
            "`make test-conformance` all of it (`tests/conformance/`). ✓: the same as under `run`; "
            "✗: known to differ today (listed below)."
        ),
        "",
        "Behaviours: " + "; ".join(f"`{name}`: {BEHAVIOURS[name].title}" for name in names) + ".",
        "",
        "| shape | " + " | ".join(f"`{name}`" for name in names) + " |",
        "|---" * (len(names) + 1) + "|",
    ]
    run = set(combinations())
    for shape in SHAPES.values():
        if shape.loops:
            failures = known_failures(shape.name, names[0])
            status = _short(failures) if failures else "refused at publish: a DAG cannot loop"
            lines.append(f"| {shape.title} | {status} |" + " |" * (len(names) - 1))
            continue
        cells = [_cell(shape.name, b) if (shape.name, b) in run else "—" for b in names]
        lines.append(f"| {shape.title} | " + " | ".join(cells) + " |")
    lines += [
        "",
        (
            "Known differences (items of issue 15 and findings of the suite; each is a "
            "strict expected failure of the suite until it is fixed):"
        ),
        "",
    ]
    lines += [
        f"- **{label.removeprefix('issue 15 ')}**: {reason}"
        for label, (reason, _) in KNOWN_FAILURES.items()
    ] or ["- none today (issue 15 items 1-7 and two findings of the suite are fixed)"]
    lines += ["", "Differences by design (the comparison ignores only these):", ""]
    lines += [f"- **{name}**: {text}" for name, text in DOCUMENTED_DIFFERENCES.items()]
    lines += ["", END]
    return "\n".join(lines)


def with_block(text: str) -> str:
    start, end = text.index(BEGIN), text.index(END) + len(END)
    return text[:start] + block() + text[end:]


if __name__ == "__main__":
    current = FEATURES.read_text(encoding="utf-8")
    if "--write" in sys.argv:
        FEATURES.write_text(with_block(current), encoding="utf-8")
    else:
        print(block())
