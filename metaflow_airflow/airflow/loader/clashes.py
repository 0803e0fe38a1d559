"""DAG files beside the loader that name a published DAG id: Airflow keeps one DAG per id, from
whichever file it parsed last, without an import error or a warning, so a hand-written DAG of
the same id silently takes a published flow's place (or the other way round).

Each DAG file is parsed in a process of its own, so the loader cannot see the other files'
DAGs; it reads their text instead, as Airflow's own "might contain a DAG" check does, and warns
about each file that has a published DAG id as a string literal. A full parse does this (a
task's parse does not), over at most :data:`MAX_FILES` files of at most :data:`MAX_BYTES`.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterable
from pathlib import Path

from metaflow_airflow.airflow.loader.policy import LOGGER_NAME
from metaflow_airflow.settings import env_var

log = logging.getLogger(LOGGER_NAME)

MAX_FILES = 2000
MAX_BYTES = 1024 * 1024
# What makes a file one of this package's loader files (they define the published DAG ids).
LOADER_CALL = b"load_dags("


def clashing_files(folder: Path, dag_ids: Iterable[str], own_file: Path) -> dict[str, list[Path]]:
    """DAG id → the Python files under ``folder`` (other than loader files) that hold it as a
    string literal."""
    ids = sorted(set(dag_ids), key=len, reverse=True)
    if not ids:
        return {}
    pattern = re.compile(rb"""(["'])(%s)\1""" % b"|".join(re.escape(i.encode()) for i in ids))
    found: dict[str, list[Path]] = {}
    for path in _python_files(folder, own_file):
        try:
            if path.stat().st_size > MAX_BYTES:
                continue
            text = path.read_bytes()
        except OSError:
            continue
        if LOADER_CALL in text:
            continue
        for dag_id in sorted({m.group(2).decode() for m in pattern.finditer(text)}):
            found.setdefault(dag_id, []).append(path)
    return found


def warn_about_clashes(folder: Path, dag_ids: Iterable[str], own_file: Path) -> None:
    """One warning in the parse log per published DAG id that another DAG file names."""
    for dag_id, paths in sorted(clashing_files(folder, dag_ids, own_file).items()):
        log.warning(
            "metaflow-airflow: DAG id %s of a published flow also appears in %s: if that file "
            "defines a DAG with this id, Airflow keeps only one of the two, from whichever "
            "file it parsed last, and says nothing. Rename one, or set %s (e.g. 'mf.') to put a "
            "prefix before every published DAG id.",
            dag_id,
            ", ".join(map(str, paths)),
            env_var("dag_id_prefix"),
        )


def _python_files(folder: Path, own_file: Path) -> Iterable[Path]:
    count = 0
    for root, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith((".", "__pycache__")))
        for name in sorted(files):
            path = Path(root, name)
            if not name.endswith(".py") or path == own_file:
                continue
            count += 1
            if count > MAX_FILES:
                return
            yield path
