"""Every store failure a command meets is one ``error:`` line naming the store, the cause in plain
words and the fix, on every cloud, for publish, list, validate, show and history; ``--verbose``
adds the traceback. The stores are real servers on 127.0.0.1 (moto, fake-gcs-server, azurite), a
closed port, and a small HTTP server that refuses every GCS request."""

from __future__ import annotations

import http.server
import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers import flow_path

from metaflow_airflow.cli import _run

pytestmark = pytest.mark.timeout(120)

FLOW = str(flow_path("branch_flow.py"))
# Each command as a user types it (the store options follow).
COMMANDS = {
    "list": ["list"],
    "validate": ["validate"],
    "show": ["show", "BranchFlow"],
    "history": ["history", "BranchFlow"],
    "publish": ["publish", FLOW, "--compute", "local"],
}
# What each command does to the store, as the error line says it.
ACTIONS = {
    "list": "list",
    "validate": "list",
    "show": "read",
    "history": "read",
    "publish": "write to",
}


def run_cli(args: list[str], monkeypatch: pytest.MonkeyPatch, capsys) -> tuple[int, str]:
    """The command as its console script runs it (``main`` without its exit-time gc freeze):
    exit code and stderr."""
    monkeypatch.setattr(sys, "argv", ["metaflow-airflow", *args])
    with pytest.raises(SystemExit) as exit_info:
        _run()
    return exit_info.value.code, capsys.readouterr().err


def one_error_line(stderr: str) -> str:
    """The error line, after the progress lines a publish prints first."""
    lines = [line for line in stderr.splitlines() if not line.endswith("...")]
    assert len(lines) == 1, stderr
    assert lines[0].startswith("error: "), stderr
    return lines[0]


@pytest.fixture
def no_aws_credentials(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No AWS credentials anywhere botocore looks (and no instance metadata service)."""
    for name in (
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_PROFILE",
        "AWS_ENDPOINT_URL",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


@pytest.mark.parametrize("command", COMMANDS)
def test_s3_without_credentials(command, no_aws_credentials, monkeypatch, capsys):
    code, stderr = run_cli(
        [*COMMANDS[command], "--store", "s3://no-such-bucket/flows"], monkeypatch, capsys
    )
    assert code == 1
    assert one_error_line(stderr) == (
        f"error: cannot {ACTIONS[command]} manifest store s3://no-such-bucket/flows: no AWS "
        "credentials found; set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or AWS_PROFILE), "
        """or give them in --storage-options '{"key": ..., "secret": ...}'"""
    )


def closed_port() -> int:
    """A port on 127.0.0.1 that nothing listens on (the kernel just handed it out and took it
    back)."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.parametrize("command", COMMANDS)
def test_s3_endpoint_unreachable(command, s3_env, monkeypatch, capsys):
    endpoint = f"http://127.0.0.1:{closed_port()}"
    options = {
        "client_kwargs": {"endpoint_url": endpoint},
        "config_kwargs": {"retries": {"max_attempts": 1}},
    }  # one attempt: a fast test
    code, stderr = run_cli(
        [*COMMANDS[command], "--store", "s3://flows/x", "--storage-options", json.dumps(options)],
        monkeypatch,
        capsys,
    )
    assert code == 1
    assert one_error_line(stderr) == (
        f"error: cannot {ACTIONS[command]} manifest store s3://flows/x: cannot connect to "
        f"{endpoint}; check the endpoint URL (--storage-options "
        """'{"client_kwargs": {"endpoint_url": ...}}' or AWS_ENDPOINT_URL) and the network"""
    )


# The server fixture of each cloud, its name for a bucket, and what a write to a missing one
# says (Azure answers a write with its own error, not "not found").
MISSING = {
    "s3": ("s3_storage_options", "bucket", None),
    "gs": ("gcs_server", "bucket", None),
    "az": ("azure_server", "container", "the container does not exist"),
}


@pytest.mark.parametrize("cloud", MISSING)
@pytest.mark.parametrize("command", COMMANDS)
def test_bucket_missing(cloud, command, request, monkeypatch, capsys):
    fixture, word, on_write = MISSING[cloud]
    server = request.getfixturevalue(fixture)
    options = getattr(server, "storage_options", server)
    store = f"{cloud}://no-such-{word}/flows"
    code, stderr = run_cli(
        [*COMMANDS[command], "--store", store, "--storage-options", json.dumps(options)],
        monkeypatch,
        capsys,
    )
    assert code == 1
    cause = f"the {word} 'no-such-{word}' does not exist"
    if command == "publish" and on_write:
        cause = on_write
    assert one_error_line(stderr) == (
        f"error: cannot {ACTIONS[command]} manifest store {store}: {cause}; create it, or "
        "correct the store URL"
    )


# What GCS answers a client without credentials (gcsfs logs it with a traceback, then raises
# its HttpError) or whose credentials may not touch the bucket (a plain OSError).
REFUSALS = {401: "Login Required", 403: "caller does not have access"}
SHOWN = {401: "Login Required, 401", 403: "Forbidden: b/flows/o caller does not have access"}


class _Refusing(http.server.BaseHTTPRequestHandler):
    """Answers every request with the status of its server."""

    def _refuse(self) -> None:
        status = self.server.status  # type: ignore[attr-defined]
        body = json.dumps({"error": {"code": status, "message": REFUSALS[status]}})
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body.encode())

    do_GET = do_POST = do_PUT = do_DELETE = _refuse

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(params=sorted(REFUSALS))
def refusing_gcs(request) -> Iterator[tuple[str, int]]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Refusing)
    server.status = request.param  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", request.param
    server.shutdown()
    server.server_close()


def test_gcs_access_denied_is_one_line_without_gcsfs_logging(refusing_gcs):
    """gcsfs logs a refused request with its traceback; the console script prints only the
    error line (a real process: in-process, pytest's log capture would hide the noise)."""
    endpoint, status = refusing_gcs
    options = json.dumps({"endpoint_url": endpoint, "token": "anon"})
    argv = [
        sys.executable,
        "-c",
        "from metaflow_airflow.cli import main; main()",
        "list",
        "--store",
        "gs://flows/x",
        "--storage-options",
        options,
    ]
    env = {**os.environ, "GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT": "false"}
    result = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=60, check=False)
    assert result.returncode == 1
    line = one_error_line(result.stderr)
    assert line == (
        f"error: cannot list manifest store gs://flows/x: access denied ({SHOWN[status]}); use "
        "credentials allowed to list, read and write the bucket (roles/storage.objectAdmin)"
    )

    verbose = subprocess.run(
        [*argv[:3], "--verbose", *argv[3:]],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert "Traceback (most recent call last)" in verbose.stderr
    assert verbose.stderr.splitlines()[-1] == line


def test_verbose_shows_the_traceback(no_aws_credentials, monkeypatch, capsys):
    code, stderr = run_cli(
        ["--verbose", "list", "--store", "s3://no-such-bucket/flows"], monkeypatch, capsys
    )
    assert code == 1
    assert "botocore.exceptions.NoCredentialsError" in stderr
    assert stderr.splitlines()[-1].startswith("error: cannot list manifest store s3://")
    monkeypatch.setenv("METAFLOW_AIRFLOW_VERBOSE", "1")
    code, stderr = run_cli(["list", "--store", "s3://no-such-bucket/flows"], monkeypatch, capsys)
    assert "botocore.exceptions.NoCredentialsError" in stderr
