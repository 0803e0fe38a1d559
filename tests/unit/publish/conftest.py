"""Every publish-side unit test starts its flows in this process: each gets Metaflow's
process-wide state back as it found it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from metaflow_start import metaflow_globals_restored


@pytest.fixture(autouse=True)
def _fresh_metaflow_state() -> Iterator[None]:
    with metaflow_globals_restored():
        yield
