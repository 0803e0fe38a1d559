"""Real servers on 127.0.0.1 for the tests: a free port, a process that runs until the session
ends (its output in a log), and a wait until it answers HTTP. The integration tests' object
stores and the Airflow topology (``tests/topology``) start theirs with these."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

# moto's (and every S3 client's) credentials on the test servers.
AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}


def free_port() -> int:
    """A TCP port of 127.0.0.1 that nothing listens on now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until_up(
    name: str, url: str, process: subprocess.Popen | None, timeout: float = 30.0, **urlopen: Any
) -> None:
    """Until ``url`` answers HTTP at all (an error status counts: the server is up)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"{name} exited with code {process.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=1, **urlopen):
                return
        except urllib.error.HTTPError:
            return
        except (urllib.error.URLError, ConnectionError, OSError):
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{name} did not answer on {url} within {timeout} s")


def start(argv: list[str], log: Path, env: Mapping[str, str] | None = None) -> subprocess.Popen:
    """``argv`` in a process group of its own (so that a stop ends its children too), its
    output appended to ``log``."""
    with open(log, "ab") as out:
        return subprocess.Popen(
            argv,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=dict(os.environ if env is None else env),
            start_new_session=True,
        )


def stop(process: subprocess.Popen, timeout: float = 10.0, signum: int = signal.SIGTERM) -> None:
    """``signum`` to the process's group, SIGKILL to it after ``timeout`` seconds."""
    if process.poll() is None:
        _signal_group(process, signal.SIGCONT)  # a frozen server cannot act on SIGTERM
        _signal_group(process, signum)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            pass
    _signal_group(process, signal.SIGKILL)  # what the leader left behind
    process.wait()


def _signal_group(process: subprocess.Popen, signum: int) -> None:
    try:
        os.killpg(process.pid, signum)
    except ProcessLookupError:
        pass


@contextmanager
def server(
    name: str, argv: list[str], log: Path, ready_url: str, **urlopen: Any
) -> Iterator[subprocess.Popen]:
    """Run ``argv`` until the context ends, its output in ``log``."""
    process = start(argv, log, {**os.environ, **AWS_ENV})
    try:
        wait_until_up(name, ready_url, process, **urlopen)
        yield process
    finally:
        stop(process)
