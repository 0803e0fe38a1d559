"""A moto S3 server that one test owns: unlike the session's ``s3_server`` it can be stopped
(an outage), frozen with SIGSTOP (a store that accepts connections and never answers), and asked
which requests it received (moto's recorder), to count what a parse costs."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path
from typing import Any

AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}


class MotoServer:
    """``moto_server`` on a free port of 127.0.0.1, recording requests into ``folder``."""

    def __init__(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        self.endpoint = f"http://127.0.0.1:{port}"
        env = {**os.environ, **AWS_ENV, "MOTO_RECORDER_FILEPATH": str(folder / "requests.jsonl")}
        binary = Path(sys.executable).parent / "moto_server"
        with open(folder / "moto_server.log", "wb") as log:
            self.process = subprocess.Popen(
                [str(binary), "-H", "127.0.0.1", "-p", str(port)],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,
            )
        self._wait_until_up()

    @property
    def storage_options(self) -> dict[str, Any]:
        return {"client_kwargs": {"endpoint_url": self.endpoint}}

    def bucket(self) -> str:
        """A new empty bucket; returns its ``s3://`` URL."""
        import s3fs

        name = f"mfa-test-{uuid.uuid4().hex[:16]}"
        s3fs.S3FileSystem(**self.storage_options, skip_instance_cache=True).mkdir(name)
        return f"s3://{name}"

    def record(self) -> None:
        """Forget the requests so far and record from now on."""
        self._api("reset-recording")
        self._api("start-recording")

    def requests(self) -> list[tuple[str, str]]:
        """(method, path and query) of each request since :meth:`record`."""
        text = self._api("download-recording", method="GET")
        entries = [json.loads(line) for line in text.splitlines() if line.strip()]
        return [(e["method"], e["url"].split(self.endpoint, 1)[-1]) for e in entries]

    def freeze(self) -> None:
        """The server keeps its port (connections are accepted) but answers nothing."""
        self.process.send_signal(signal.SIGSTOP)

    def thaw(self) -> None:
        """Answer again (what arrived while frozen is answered too)."""
        self.process.send_signal(signal.SIGCONT)
        self._wait_until_up()

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGCONT)
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def _api(self, action: str, method: str = "POST") -> str:
        request = urllib.request.Request(
            f"{self.endpoint}/moto-api/recorder/{action}",
            method=method,
            data=b"" if method == "POST" else None,
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.read().decode()

    def _wait_until_up(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"moto_server exited with code {self.process.returncode}")
            try:
                with urllib.request.urlopen(f"{self.endpoint}/moto-api/", timeout=1):
                    return
            except (urllib.error.URLError, OSError):
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"moto_server did not answer on {self.endpoint} within {timeout} s")
