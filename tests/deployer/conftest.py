"""A real Airflow to deploy to, for the session (see light_stack.py), and the environment that
points the CLI, the flow command and the Deployer at it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from light_stack import Stack, light_stack

# The real-Airflow runs cost minutes: they run on the newest line of each major version (what
# the issue asks for), not on every line of tox.ini; the REST API is the same across minors.
DEPLOYER_LINES = ("3.3", "2.11")


@pytest.fixture(scope="session")
def airflow_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    import airflow

    line = ".".join(airflow.__version__.split(".")[:2])
    if line not in DEPLOYER_LINES:
        pytest.skip(f"real-Airflow Deployer tests run on Airflow {' and '.join(DEPLOYER_LINES)}")
    with light_stack(tmp_path_factory.mktemp("airflow-stack")) as stack:
        yield stack


@pytest.fixture
def stack_env(airflow_stack: Stack, monkeypatch: pytest.MonkeyPatch) -> Stack:
    """This process's environment points at the stack (the Deployer's children inherit it)."""
    for name, value in airflow_stack.env.items():
        monkeypatch.setenv(name, value)
    return airflow_stack
