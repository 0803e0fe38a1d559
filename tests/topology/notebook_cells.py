"""Run notebook cells as Jupyter's IPython kernel does: one ``InteractiveShell``, each cell
through ``run_cell(code, store_history=True)`` (the kernel's call for an execute request; Metaflow's
``NBDeployer`` reads the running cell from that history). Run by test_notebook_deployer.py in a
process of its own with the stack's configuration; prints each cell's result (its last
expression's value, as ``Out[n]`` shows it) as one JSON list on the last line.

Usage: python notebook_cells.py CELLS_JSON NOTEBOOK_FOLDER
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from IPython.core.interactiveshell import InteractiveShell


def run_cells(cells: list[str]) -> list[str]:
    shell = InteractiveShell.instance()
    results = []
    for cell in cells:
        executed = shell.run_cell(cell, store_history=True)
        executed.raise_error()  # the cell's exception, as the notebook would show it
        results.append(repr(executed.result))
    return results


if __name__ == "__main__":
    os.chdir(sys.argv[2])  # the notebook's folder: NBDeployer writes the cell's flow file there
    print(json.dumps(run_cells(json.loads(Path(sys.argv[1]).read_text()))))
