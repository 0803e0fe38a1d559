"""The docs point at the tree as it is: the README's layout table is the one made from the tree
(every module, no stale one), and every repository path and relative link in README.md and
docs/ names something that exists."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest
from helpers import REPO

sys.path.insert(0, str(REPO / "scripts"))
import layout  # noqa: E402  (scripts/ is not a package)

DOCUMENTS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
# A path in backquotes that starts with one of the repository's folders.
REPO_PATH = re.compile(r"`((?:metaflow_airflow|tests|benchmarks|scripts|docs|examples)/[^`\s]*)`")
LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")


def test_readme_layout_table_is_made_from_the_tree():
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    regenerate = "run: .venv/bin/python scripts/layout.py --write"
    assert layout.readme_with_table(readme) == readme, regenerate


def test_layout_table_names_every_module_of_the_package():
    named = {path.strip("`*").rstrip("/") for path, _ in layout.rows()}
    package = REPO / "metaflow_airflow"
    modules = {p.relative_to(package).as_posix() for p in package.rglob("*.py")
               if p.name != "__init__.py"}
    folders = {p.parent.relative_to(package).as_posix() for p in package.rglob("*/__init__.py")}
    assert modules | folders <= named


def exists(path: str) -> bool:
    """A file or folder of the repository; ``file.py::test_name``: a test defined in it."""
    path, _, test = path.partition("::")
    found = REPO / path.rstrip("/")
    return found.exists() and (not test or f"def {test}(" in found.read_text(encoding="utf-8"))


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda p: p.name)
def test_every_repository_path_and_link_exists(document: Path):
    text = document.read_text(encoding="utf-8")
    missing = [path for path in REPO_PATH.findall(text) if "*" not in path and not exists(path)]
    missing += [link for link in LINK.findall(text)
                if "://" not in link and not (document.parent / link).exists()]
    assert missing == []


def test_test_modules_have_unique_names():
    """The test folders have no __init__.py: pytest imports each test module by its file name,
    and a second module of the same name stops the whole run at collection."""
    names = [path.name for path in (REPO / "tests").rglob("test_*.py")]
    assert sorted({name for name in names if names.count(name) > 1}) == []
