"""Metaflow's ``NBDeployer`` with the ``airflow_manifest`` provider, as in a notebook: the cells of
docs/deployer.md's notebook example run through IPython (notebook_cells.py) against the
production topology: create, trigger with typed parameters, wait, read an artifact, delete."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest
from deploying import run
from helpers import REPO

pytestmark = [pytest.mark.topology, pytest.mark.timeout(600)]
HERE = Path(__file__).parent


def notebook_cells() -> list[str]:
    """The ```python blocks of the doc's notebook section, one cell each."""
    doc = (REPO / "docs" / "deployer.md").read_text()
    section = doc.split("## In a notebook: `NBDeployer`", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```python\n(.*?)```", section, flags=re.DOTALL)


def test_the_docs_notebook_cells_deploy_run_and_read_through_nbdeployer(stack, tmp_path):
    cells = notebook_cells()
    assert len(cells) == 4 and "NBDeployer(NotebookFlow)" in cells[0]
    cells_file = tmp_path / "cells.json"
    cells_file.write_text(json.dumps(cells))
    notebook = tmp_path / "notebook"  # where the notebook's flow file goes (NBDeployer's cwd)
    notebook.mkdir()
    done = run(stack, [sys.executable, str(HERE / "notebook_cells.py"), str(cells_file),
                       str(notebook)], IPYTHONDIR=str(tmp_path / "ipython"))  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    results = json.loads(done.stdout.strip().splitlines()[-1])

    assert results[1] == "'success'"  # triggered.status, after waiting
    assert results[2] == "4.5"  # alpha=1.5 and count=3 arrived typed: 1.5 * 3
    assert not list(notebook.iterdir())  # deployer.cleanup() removed the flow file
    listed = run(stack, [str(Path(sys.executable).parent / "metaflow-airflow"), "list"])
    assert listed.returncode == 0 and "NotebookFlow" not in listed.stdout  # deployed.delete()
