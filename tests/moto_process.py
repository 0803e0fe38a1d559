"""A moto S3 server that one test owns: unlike the session's ``s3_server`` it can be stopped
(an outage), frozen with SIGSTOP (a store that accepts connections and never answers), and asked
which requests it received (moto's recorder), to count what a parse costs."""

from __future__ import annotations

import json
import os
import signal
import sys
import urllib.request
import uuid
from pathlib import Path
from typing import Any

from servers import AWS_ENV, free_port, start, stop, wait_until_up


class MotoServer:
    """``moto_server`` on a free port of 127.0.0.1, recording requests into ``folder``."""

    def __init__(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.folder = folder
        self.port = free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.start()

    def start(self) -> None:
        """Start the server (again, on the same port: a restart after :meth:`stop` is served
        empty, as moto keeps everything in memory)."""
        env = {
            **os.environ,
            **AWS_ENV,
            "MOTO_RECORDER_FILEPATH": str(self.folder / "requests.jsonl"),
        }
        binary = Path(sys.executable).parent / "moto_server"
        argv = [str(binary), "-H", "127.0.0.1", "-p", str(self.port)]
        self.process = start(argv, self.folder / "moto_server.log", env)
        self._wait_until_up()

    @property
    def storage_options(self) -> dict[str, Any]:
        return {"client_kwargs": {"endpoint_url": self.endpoint}}

    def bucket(self) -> str:
        """A new empty bucket; returns its ``s3://`` URL."""
        import boto3

        name = f"mfa-test-{uuid.uuid4().hex[:16]}"
        client = boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            aws_access_key_id=AWS_ENV["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=AWS_ENV["AWS_SECRET_ACCESS_KEY"],
            region_name=AWS_ENV["AWS_DEFAULT_REGION"],
        )
        client.create_bucket(Bucket=name)  # credentials of its own: not this process's
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
        stop(self.process)

    def _api(self, action: str, method: str = "POST") -> str:
        request = urllib.request.Request(
            f"{self.endpoint}/moto-api/recorder/{action}",
            method=method,
            data=b"" if method == "POST" else None,
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.read().decode()

    def _wait_until_up(self) -> None:
        try:
            wait_until_up("moto_server", f"{self.endpoint}/moto-api/", self.process)
        except RuntimeError:
            self.stop()
            raise
