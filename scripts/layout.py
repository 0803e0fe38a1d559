"""The README's layout table, made from the tree: one row per folder and module of the package,
described by the first sentence of its docstring, so the table is complete and cannot drift
(tests/unit/test_layout_docs.py compares it with README.md).

    .venv/bin/python scripts/layout.py           # print the table
    .venv/bin/python scripts/layout.py --write   # replace the table in README.md
"""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PACKAGE = REPO / "metaflow_airflow"
README = REPO / "README.md"
BEGIN, END = "<!-- layout: begin (scripts/layout.py) -->", "<!-- layout: end -->"
# The order a reader meets the rooms in: the shared core, the two sides, then the tools.
ROOMS = ["manifest", "store", "runtime", "publish", "airflow", "cli", "mwaa"]


def first_sentence(path: Path) -> str:
    doc = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8"))) or ""
    text = re.sub(r":\w+:`~?(?:[\w.]*\.)?(\w+)`", r"`\1`", " ".join(doc.split()))
    match = re.match(r"(.+?\.)(\s|$)", text)
    sentence = (match.group(1) if match else text).rstrip(".")
    return sentence.replace("``", "`").replace("|", "\\|")


def rows() -> list[tuple[str, str]]:
    found = [("`metaflow_airflow/`", first_sentence(PACKAGE / "__init__.py"))]
    found += [(f"`{p.name}`", first_sentence(p)) for p in sorted(PACKAGE.glob("*.py"))
              if p.name != "__init__.py"]
    rooms = sorted((p for p in PACKAGE.iterdir() if (p / "__init__.py").exists()),
                   key=lambda p: (ROOMS.index(p.name) if p.name in ROOMS else len(ROOMS), p.name))
    for room in rooms:
        for folder in sorted([room, *(p.parent for p in room.rglob("*/__init__.py"))]):
            relative = folder.relative_to(PACKAGE).as_posix()
            found.append((f"**`{relative}/`**", first_sentence(folder / "__init__.py")))
            for module in sorted(folder.glob("*.py")):
                if module.name != "__init__.py":
                    found.append((f"`{relative}/{module.name}`", first_sentence(module)))
    return found


def table() -> str:
    lines = ["| path | what |", "|---|---|"]
    lines += [f"| {path} | {what} |" for path, what in rows()]
    return "\n".join(lines) + "\n"


def readme_with_table(readme: str) -> str:
    before, rest = readme.split(BEGIN, 1)
    _, after = rest.split(END, 1)
    return f"{before}{BEGIN}\n{table()}{END}{after}"


if __name__ == "__main__":
    if sys.argv[1:] == ["--write"]:
        README.write_text(readme_with_table(README.read_text(encoding="utf-8")), encoding="utf-8")
    else:
        print(table(), end="")
