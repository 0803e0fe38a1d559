"""Shared fixtures: publishing flows and parsing the loader with Airflow's DagBag."""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers import AIRFLOW_HOME, SESSION_DIR, dagbag_parser, publisher


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--conformance",
        choices=("ci", "all"),
        default="ci",
        help="tests/conformance: the subset of each Airflow line (ci) or the whole matrix (all)",
    )


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    shutil.rmtree(SESSION_DIR, ignore_errors=True)


@pytest.fixture(scope="session")
def airflow_db() -> Path:
    """A migrated SQLite Airflow database, shared by the session."""
    airflow = Path(sys.executable).parent / "airflow"
    subprocess.run([str(airflow), "db", "migrate"], check=True, capture_output=True)
    return AIRFLOW_HOME


@pytest.fixture
def store_url(tmp_path: Path) -> str:
    """An empty local manifest store."""
    return f"file://{tmp_path / 'store'}"


@pytest.fixture
def publish(store_url: str):
    """Publish a flow file (from examples/ or tests/flows/) to ``store_url``."""
    return publisher(store_url)


@pytest.fixture
def dagbag(airflow_db: Path):
    """Parse ``dags_loader.py`` with Airflow's DagBag against a given store."""
    with dagbag_parser() as parse:
        yield parse


@pytest.fixture
def warnings_logged() -> Iterator[list[logging.LogRecord]]:
    """The loader's warnings and errors, whatever an earlier test (Airflow) did to logging."""
    from metaflow_airflow.airflow.loader.policy import LOGGER_NAME

    records: list[logging.LogRecord] = []
    handler = logging.Handler(level=logging.WARNING)
    handler.emit = records.append  # type: ignore[method-assign]
    logger = logging.getLogger(LOGGER_NAME)
    disabled, level = logger.disabled, logger.level
    logger.disabled = False
    logger.setLevel(logging.WARNING)
    logger.addHandler(handler)
    yield records
    logger.removeHandler(handler)
    logger.disabled, logger.level = disabled, level


@pytest.fixture
def clean_env() -> Iterator[None]:
    """Restore os.environ after a test that changes it directly."""
    saved = dict(os.environ)
    yield
    os.environ.clear()
    os.environ.update(saved)
