"""A small real Airflow for the Deployer and `trigger` tests: the API server (Airflow 3's
api-server, Airflow 2's webserver with basic auth), the scheduler and (Airflow 3) the DAG
processor as processes on 127.0.0.1, SQLite, LocalExecutor (SequentialExecutor on Airflow 2),
a private AIRFLOW_HOME, the loader in dags/ reading a folder store, and a real login.

Not the production topology (tests/topology/, PostgreSQL and Celery): only what a client of the
public REST API needs to see real parsing, triggering, pausing, runs and their termination.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[2]
USERNAME = "deployer-tester"
PASSWORD = "s3cret-pass"


@dataclass(frozen=True)
class Stack:
    api_url: str
    username: str
    password: str
    store_url: str
    home: Path
    airflow_major: int

    @property
    def env(self) -> dict[str, str]:
        """What a client (the CLI, the Deployer) needs to reach this Airflow and its store."""
        return {
            "METAFLOW_AIRFLOW_API_URL": self.api_url,
            "METAFLOW_AIRFLOW_API_USERNAME": self.username,
            "METAFLOW_AIRFLOW_API_PASSWORD": self.password,
            "METAFLOW_AIRFLOW_STORE": self.store_url,
        }


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def light_stack(home: Path) -> Iterator[Stack]:
    import airflow

    major = int(airflow.__version__.split(".")[0])
    airflow_bin = str(Path(sys.executable).parent / "airflow")
    port = free_port()
    api_url = f"http://127.0.0.1:{port}"
    (home / "dags").mkdir(parents=True, exist_ok=True)
    (home / "store").mkdir(exist_ok=True)
    shutil.copy(REPO / "dags_loader.py", home / "dags" / "dags_loader.py")
    env = {
        **os.environ,
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(home / "dags"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home}/airflow.db",
        "AIRFLOW__LOGGING__BASE_LOG_FOLDER": str(home / "logs"),
        "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
        "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "1",
        "AIRFLOW__SCHEDULER__JOB_HEARTBEAT_SEC": "1",
        "METAFLOW_AIRFLOW_STORE": f"file://{home / 'store'}",
        "METAFLOW_AIRFLOW_CACHE_FRESH_SECONDS": "0",
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
        # Airflow 2's executors start tasks as `airflow tasks run ...`, found on PATH.
        "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]),
    }
    secret = secrets.token_hex(16)
    if major >= 3:
        passwords = home / "passwords.json"
        passwords.write_text(json.dumps({USERNAME: PASSWORD}))
        env.update(
            {
                "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
                "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{api_url}/execution/",
                "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{USERNAME}:admin",
                "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(passwords),
                "AIRFLOW__API_AUTH__JWT_SECRET": secret,
                "AIRFLOW__API__PORT": str(port),
                "AIRFLOW__API__WORKERS": "1",
                "AIRFLOW__API__BASE_URL": api_url,
                "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "2",
                "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "2",
                "AIRFLOW__CORE__PARALLELISM": "4",
            }
        )
        commands = {
            "api-server": [airflow_bin, "api-server", "--port", str(port), "--host", "127.0.0.1"],
            "scheduler": [airflow_bin, "scheduler"],
            "dag-processor": [airflow_bin, "dag-processor"],
        }
    else:
        env.update(
            {
                "AIRFLOW__CORE__EXECUTOR": "SequentialExecutor",
                "AIRFLOW__API__AUTH_BACKENDS": "airflow.api.auth.backend.basic_auth",
                "AIRFLOW__WEBSERVER__WORKERS": "1",
                "AIRFLOW__WEBSERVER__SECRET_KEY": secret,
                "AIRFLOW__WEBSERVER__BASE_URL": api_url,
                "AIRFLOW__SCHEDULER__MIN_FILE_PROCESS_INTERVAL": "2",
                "AIRFLOW__SCHEDULER__DAG_DIR_LIST_INTERVAL": "2",
            }
        )
        commands = {
            "webserver": [airflow_bin, "webserver", "--port", str(port), "--hostname", "127.0.0.1"],
            "scheduler": [airflow_bin, "scheduler"],
        }
    subprocess.run([airflow_bin, "db", "migrate"], env=env, check=True, capture_output=True)
    if major < 3:
        subprocess.run(
            [
                airflow_bin,
                "users",
                "create",
                "-u",
                USERNAME,
                "-p",
                PASSWORD,
                "-r",
                "Admin",
                "-f",
                "Deployer",
                "-l",
                "Tester",
                "-e",
                "tester@example.com",
            ],
            env=env,
            check=True,
            capture_output=True,
        )
    with ExitStack() as stack:
        for name, argv in commands.items():
            stack.enter_context(_process(name, argv, env, home / f"{name}.log"))
        health = "/api/v2/monitor/health" if major >= 3 else "/api/v1/health"
        _wait_for(api_url + health, timeout=120, logs=home)
        yield Stack(
            api_url=api_url,
            username=USERNAME,
            password=PASSWORD,
            store_url=env["METAFLOW_AIRFLOW_STORE"],
            home=home,
            airflow_major=major,
        )


@contextmanager
def _process(name: str, argv: list[str], env: dict[str, str], log: Path) -> Iterator[None]:
    with open(log, "wb") as out:
        process = subprocess.Popen(
            argv, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        yield
    finally:
        # The whole process group: the API server's workers, the scheduler's task processes.
        try:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        except ProcessLookupError:
            process.wait()


def _wait_for(url: str, timeout: float, logs: Path) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.5)
    tails = {p.name: p.read_text(errors="replace")[-2000:] for p in logs.glob("*.log")}
    raise RuntimeError(f"Airflow API at {url} not up after {timeout} s: {tails}")
