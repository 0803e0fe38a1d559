"""The docs cannot drift from what the commands do: every ``console`` block in docs/ that shows a
``metaflow-airflow`` command runs here, and its output must be the one the doc shows.

The blocks of one document run in order, in one sandbox that stands for ``/tmp`` (a command's
``/tmp/...`` paths go there), from the project folder, with a local Metaflow datastore in
``/tmp/mf`` and the user ``docs``. Before the comparison, both sides lose what differs from run
to run: times, version names, hashes, code package paths, the sandbox's and the project's own
paths. stdout and stderr are compared as one stream, in the order the command wrote them.

Two HTML comments, on the lines just above a block, steer it (and show in the doc's source):

- ``<!-- doc-test: setup COMMAND -->`` runs COMMAND first, unseen (files the doc assumes);
- ``<!-- doc-test: skip REASON -->`` does not run the block; :data:`SKIPPED` counts such
  blocks per document, so a new one fails this test until it is counted there too.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from helpers import REPO

pytestmark = [pytest.mark.once, pytest.mark.timeout(600)]

DOCS = sorted((REPO / "docs").glob("*.md"))
# Blocks that cannot run here, per document (each says why in its skip comment).
SKIPPED = {"cli.md": 0}
MARK = re.compile(r"^<!-- doc-test: (setup|skip) (.+?) -->$")
COMMAND = "metaflow-airflow"
# What differs between runs, as the doc shows it and as a run prints it.
VOLATILE = [
    (re.compile(r"\d{8}T\d{6}\.\d{6}Z-[0-9a-f]{12}"), "<version>"),
    (re.compile(r"\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(\.\d+)?(\+00:00|Z| UTC)?"), "<time>"),
    (re.compile(r"data/[0-9a-f]{2}/[0-9a-f]{40}"), "data/<package>"),
    (re.compile(r"\b[0-9a-f]{12,64}\b"), "<hash>"),
]


@dataclass
class Block:
    """One console block: where it starts, its hidden setup or why it is skipped, and each
    command with the output the doc shows for it."""

    line: int
    setup: list[str] = field(default_factory=list)
    skip: str | None = None
    steps: list[tuple[str, list[str]]] = field(default_factory=list)


def console_blocks(doc: Path) -> list[Block]:
    """The console blocks of ``doc`` that run a ``metaflow-airflow`` command."""
    lines = doc.read_text(encoding="utf-8").splitlines()
    found: list[Block] = []
    for number, line in enumerate(lines):
        if line.strip() != "```console":
            continue
        block = Block(line=number + 1)
        above = number - 1
        while above >= 0 and (mark := MARK.match(lines[above].strip())):
            if mark.group(1) == "skip":
                block.skip = mark.group(2)
            else:
                block.setup.insert(0, mark.group(2))
            above -= 1
        end = lines.index("```", number + 1)
        for text in lines[number + 1 : end]:
            if text.startswith("$ "):
                block.steps.append((text[2:], []))
            elif block.steps:
                block.steps[-1][1].append(text)
        if any(command.startswith(COMMAND) for command, _ in block.steps):
            found.append(block)
    return found


def normalised(text: str, sandbox: Path) -> list[str]:
    text = text.replace(str(sandbox), "/tmp").replace(str(REPO), "~/metaflow-airflow")
    for pattern, placeholder in VOLATILE:
        text = pattern.sub(placeholder, text)
    lines = [line.rstrip() for line in text.splitlines()]
    while lines and not lines[-1]:
        lines.pop()
    return lines


def run(command: str, sandbox: Path) -> str:
    """``command`` as a user types it, with ``/tmp`` in the sandbox: stdout and stderr."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("METAFLOW_AIRFLOW_")}
    env.update(
        PATH=f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
        PYTHONUNBUFFERED="1",  # stdout and stderr in the order they were written
        METAFLOW_USER="docs",
        METAFLOW_DEFAULT_DATASTORE="local",
        METAFLOW_DEFAULT_METADATA="local",
        METAFLOW_DATASTORE_SYSROOT_LOCAL=str(sandbox / "mf"),
        METAFLOW_CARD_LOCALROOT=str(sandbox / "mf" / "mf.cards"),
    )
    done = subprocess.run(
        ["bash", "-c", command.replace("/tmp/", f"{sandbox}/") + " 2>&1"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    return done.stdout


def test_every_skipped_block_is_counted_and_says_why():
    skipped = {doc.name: [b for b in console_blocks(doc) if b.skip] for doc in DOCS}
    assert {name: len(blocks) for name, blocks in skipped.items() if blocks} == {
        name: count for name, count in SKIPPED.items() if count
    }
    assert all(len(block.skip or "") > 10 for blocks in skipped.values() for block in blocks)


@pytest.mark.parametrize(
    "doc", [doc for doc in DOCS if console_blocks(doc)], ids=lambda doc: doc.name
)
def test_console_blocks_show_what_the_commands_print(doc: Path, tmp_path: Path):
    sandbox = tmp_path.resolve()
    ran = 0
    for block in console_blocks(doc):
        if block.skip:
            continue
        for command in block.setup:
            run(command, sandbox)
        for command, shown in block.steps:
            printed = run(command, sandbox)
            where = f"{doc.name}:{block.line}: $ {command}\nprinted:\n{printed}"
            assert normalised(printed, sandbox) == normalised("\n".join(shown), sandbox), where
        ran += 1
    assert ran == len(console_blocks(doc)) - SKIPPED.get(doc.name, 0)


def help_blocks(doc: Path) -> dict[str, str]:
    """The ``text`` blocks of ``doc`` that show a ``--help``: the command ("" for the group's
    own) → the text."""
    pattern = re.compile(
        r"^```text\n(Usage: metaflow-airflow (\S+) .*?)\n```$", re.MULTILINE | re.DOTALL
    )
    return {
        "" if command.startswith("[") else command: text
        for text, command in pattern.findall(doc.read_text(encoding="utf-8"))
    }


def test_help_texts_are_the_commands_own():
    """The docs' help texts (cli.md says so) are the commands' own ``--help`` output, as an
    80-column terminal shows them (click leaves two columns free)."""
    from click.testing import CliRunner

    from metaflow_airflow.cli import cli

    shown = [(doc, item) for doc in DOCS for item in help_blocks(doc).items()]
    assert {"", "publish", "list", "show", "validate"} <= {command for _, (command, _) in shown}
    for doc, (command, text) in shown:
        args = [command, "--help"] if command else ["--help"]
        printed = CliRunner().invoke(cli, args, terminal_width=78, prog_name=COMMAND).output
        assert printed.rstrip("\n") == text, f"{doc.name}: metaflow-airflow {command} --help"
