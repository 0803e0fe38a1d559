"""A Metaflow metadata service on 127.0.0.1 for the tests: ``metaflow-local-service`` (PyPI,
Apache-2.0), which speaks the HTTP API of Netflix's metaflow-service (not on PyPI) and keeps
what it is told in a ``.metaflow`` folder, in the format of Metaflow's local metadata.

Its daemon is run in the foreground, in a process group of ours (``servers.start``), with a
home folder of its own: it writes its state file to ``~/.metaflow-local-service``, which other
test sessions on the machine would otherwise share. Where it differs from what Metaflow's
service client expects: docs/operations.md ("A Metaflow metadata service"), checked by
``tests/integration/metadata/test_metadata_service.py``.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from servers import free_port, start, stop, wait_until_up

# Longer than any test session: the daemon stops itself after this many seconds without a
# heartbeat otherwise (5 minutes by default).
IDLE_TIMEOUT = 7 * 24 * 3600


class MetadataService:
    """``metaflow-local-service``'s daemon on a free port, keeping its records in ``folder``."""

    def __init__(self, folder: Path, python: str = sys.executable) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.folder = folder
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        home = folder / "home"
        home.mkdir(exist_ok=True)
        argv = [python, "-m", "metaflow_local_service.daemon", "--port", str(self.port),
                "--metaflow-root", str(folder), "--idle-timeout", str(IDLE_TIMEOUT)]  # fmt: skip
        env = {**os.environ, "HOME": str(home), "METAFLOW_LOCAL_SERVICE_DEBUG": "1"}
        self.process = start(argv, folder / "service.log", env)
        try:
            wait_until_up("metaflow-local-service", f"{self.url}/ping", self.process, timeout=90)
        except RuntimeError:
            self.stop()
            raise

    @property
    def records(self) -> Path:
        """Where the service keeps runs, tasks and metadata (``<folder>/.metaflow``)."""
        return self.folder / ".metaflow"

    def stop(self) -> None:
        stop(self.process)
