"""Airflow as users deploy it, on 127.0.0.1: PostgreSQL as the metadata database, Redis as the
Celery broker, the scheduler, the DAG processor (Airflow 3), the API server (the webserver on
Airflow 2), the triggerer and two Celery workers, each a process of its own, with the
project's ``dags_loader.py`` in a private ``AIRFLOW_HOME``'s ``dags/``, the manifest store and
Metaflow datastore on a moto S3 server, and a Metaflow metadata service (metaflow-local-service,
for flows published with ``--metadata service``; its URL is in every component's environment).

``Stack`` is what the topology tests' session fixture starts, and what ``make airflow`` runs
(``python tests/topology/stack.py``) for someone who wants to click around. Every process runs
in a process group of its own and is stopped with it. Runs are triggered through Airflow's
public REST API with a real login, as a CI job would (:mod:`airflow_api`).
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
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

TOPOLOGY = Path(__file__).resolve().parent
TESTS = TOPOLOGY.parent
REPO = TESTS.parent
sys.path[:0] = [p for p in (str(TESTS), str(TOPOLOGY)) if p not in sys.path]

from airflow_api import AirflowApi
from metadata_service import MetadataService
from moto_process import MotoServer
from servers import AWS_ENV, free_port, start, stop, wait_until_up

USER = "admin"
# How many task processes each Celery worker runs at once.
WORKER_CONCURRENCY = 4
# What the tests' session and the machine set that must not reach the stack's processes.
_PRIVATE_PREFIXES = ("AIRFLOW__", "AIRFLOW_HOME", "_AIRFLOW", "METAFLOW_", "AWS_")


def _postgres_bin() -> Path:
    """The newest PostgreSQL server of Debian's packages (``apt-get install postgresql``)."""
    found = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/postgres"), key=lambda p: int(p.parts[-3])
    )
    if not found:
        raise RuntimeError("PostgreSQL is not installed: run `make install` (scripts/install.sh)")
    return found[-1].parent


def _as_postgres(argv: list[str]) -> list[str]:
    """PostgreSQL refuses to run as root: as root, run it as Debian's ``postgres`` user."""
    return ["runuser", "-u", "postgres", "--", *argv] if os.geteuid() == 0 else argv


def airflow_major(python: str) -> int:
    """The major version of the Airflow that ``python`` imports."""
    code = "import importlib.metadata as m; print(m.version('apache-airflow'))"
    out = subprocess.run([python, "-c", code], check=True, capture_output=True, text=True)
    return int(out.stdout.split(".", 1)[0])


class Postgres:
    """A private PostgreSQL cluster: its own data folder and port, started in the foreground
    (its process group is ours to stop), durable writes off (a test database)."""

    def __init__(self, folder: Path, log: Path) -> None:
        self.bin = _postgres_bin()
        self.folder, self.log = folder, log
        self.port = free_port()
        self.process: subprocess.Popen | None = None
        if os.geteuid() == 0:
            shutil.chown(folder, "postgres")
        initdb = [str(self.bin / "initdb"), "-D", str(folder), "-A", "trust", "-U", "airflow"]
        subprocess.run(
            _as_postgres([*initdb, "--no-sync", "-E", "UTF8"]), check=True, capture_output=True
        )

    @property
    def url(self) -> str:
        return f"postgresql+psycopg2://airflow@127.0.0.1:{self.port}/airflow"

    def start(self) -> None:
        argv = [
            str(self.bin / "postgres"), "-D", str(self.folder), "-p", str(self.port),
            "-k", str(self.folder), "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off",
            "-c", "synchronous_commit=off", "-c", "full_page_writes=off",
            "-c", "max_connections=400",
        ]  # fmt: skip
        self.process = start(_as_postgres(argv), self.log)
        ready = [str(self.bin / "pg_isready"), "-h", "127.0.0.1", "-p", str(self.port), "-q"]
        deadline = time.monotonic() + 30
        while subprocess.run(ready, check=False).returncode != 0:
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"PostgreSQL did not start: see {self.log}")
            time.sleep(0.2)

    def create_database(self) -> None:
        psql = [str(self.bin / "psql"), "-h", "127.0.0.1", "-p", str(self.port), "-U", "airflow"]
        subprocess.run(
            [*psql, "-d", "postgres", "-qc", "create database airflow"],
            check=True,
            capture_output=True,
        )

    def stop(self) -> None:
        if self.process is not None:
            stop(self.process, timeout=20, signum=signal.SIGINT)  # "fast" shutdown


class Redis:
    """Redis in the foreground on a free port, in memory only: the Celery broker."""

    def __init__(self, log: Path) -> None:
        self.port = free_port()
        self.log = log
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        binary = shutil.which("redis-server") or "/usr/bin/redis-server"
        if not os.path.exists(binary):
            raise RuntimeError("Redis is not installed: run `make install` (scripts/install.sh)")
        argv = [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                "--appendonly", "no"]  # fmt: skip
        self.process = start(argv, self.log)
        deadline = time.monotonic() + 20
        while not self._answers():
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"Redis did not start: see {self.log}")
            time.sleep(0.1)

    def _answers(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def stop(self) -> None:
        if self.process is not None:
            stop(self.process)


class Stack:
    """The whole topology in ``root`` (a folder of its own), run with the Airflow of ``python``.

    After :meth:`start`: ``api`` (the REST API with a login), ``store_url`` and
    ``storage_options`` (the manifest store), ``datastore_root`` (Metaflow's), ``metadata``
    and ``service_url`` (the metadata service), ``home`` (``AIRFLOW_HOME``), ``env`` (what
    every component runs with, Metaflow's configuration included), :meth:`publish`,
    :meth:`metaflow_env`, :meth:`component_env` and :meth:`parse_as`."""

    def __init__(self, root: Path, python: str = sys.executable, workers: int = 2) -> None:
        self.root = root
        self.python = python
        self.bin = Path(python).parent
        self.major = airflow_major(python)
        self.home = root / "airflow"
        self.logs = root / "logs"
        self.workers = workers
        self.password = secrets.token_urlsafe(12)
        self.api_port = free_port()
        self.processes: dict[str, subprocess.Popen] = {}
        self.redis = Redis(self.logs / "redis.log")
        self.postgres: Postgres | None = None
        self.moto: MotoServer | None = None
        self.metadata: MetadataService | None = None
        self.env: dict[str, str] = {}
        self.api = AirflowApi(f"http://127.0.0.1:{self.api_port}", USER, self.password, self.major)

    # --- what the tests use --------------------------------------------------------------

    @property
    def api_url(self) -> str:
        return self.api.base_url

    @property
    def store_url(self) -> str:
        return self.env["METAFLOW_AIRFLOW_STORE"]

    @property
    def storage_options(self) -> dict[str, Any]:
        return json.loads(self.env["METAFLOW_AIRFLOW_STORAGE_OPTIONS"])

    @property
    def datastore_root(self) -> str:
        return self.env["METAFLOW_DATASTORE_SYSROOT_S3"]

    @property
    def service_url(self) -> str:
        """The Metaflow metadata service's URL: the deployment's configuration (every
        component's environment), for the flows published with ``--metadata service``."""
        return self.env["METAFLOW_SERVICE_URL"]

    def metaflow_env(self) -> dict[str, str]:
        """The environment of a process that publishes flows to this stack or reads their runs
        with Metaflow's Client (S3 datastore on moto, local metadata in the stack's folder)."""
        return dict(self.env)

    def run_artifacts(self, flow_name: str, dag_id: str, run_id: str) -> dict[str, Any]:
        """The user artifacts of every task of the Metaflow run of Airflow run ``run_id``."""
        from metaflow_airflow.runtime.ids import metaflow_run_id

        return self.artifacts(flow_name, metaflow_run_id(run_id, dag_id))

    def run_locally(self, flow: str | Path, *args: str) -> str:
        """``python flow.py run ARGS`` with the stack's Metaflow configuration (the same
        datastore as the Airflow runs); returns the Metaflow run id."""
        folder = Path(tempfile.mkdtemp(prefix="local-run-", dir=self.root))
        run_id_file = folder / "run-id"
        argv = [self.python, str(flow), "run", "--run-id-file", str(run_id_file), *args]
        done = subprocess.run(argv, check=False, env=self.env, cwd=folder, capture_output=True)
        if done.returncode != 0:
            raise RuntimeError(f"{flow} run failed:\n{done.stderr.decode()[-3000:]}")
        return run_id_file.read_text().strip()

    def artifacts(self, flow_name: str, metaflow_run_id: str) -> dict[str, Any]:
        """The user artifacts of every task of a Metaflow run (``tests/run_artifacts.py`` in a
        process with the stack's Metaflow configuration)."""
        argv = [self.python, str(TESTS / "run_artifacts.py"), flow_name, metaflow_run_id]
        done = subprocess.run(argv, check=True, env=self.env, capture_output=True, text=True)
        return json.loads(done.stdout)

    def publish(self, flow: str | Path, *args: str, env: dict[str, str] | None = None) -> str:
        """``metaflow-airflow publish FLOW --compute local`` to the stack's store, as a user
        would (``env``: what the publisher's machine sets besides); returns its output."""
        argv = [str(self.bin / "metaflow-airflow"), "publish", str(flow), "--compute", "local",
                "--datastore", "s3", "--datastore-root", self.datastore_root, *args]  # fmt: skip
        done = subprocess.run(argv, check=False, env={**self.env, **(env or {})}, cwd=self.root,
                              capture_output=True, text=True)  # fmt: skip
        if done.returncode != 0:
            raise RuntimeError(f"publish {flow} failed:\n{done.stdout}\n{done.stderr}")
        return done.stdout

    # --- life cycle ------------------------------------------------------------------------

    def start(self) -> Stack:
        """Everything, from nothing; on any failure what did start is stopped again."""
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        return self

    def _start(self) -> None:
        self.logs.mkdir(parents=True, exist_ok=True)
        (self.home / "dags").mkdir(parents=True, exist_ok=True)
        shutil.copy(REPO / "dags_loader.py", self.home / "dags" / "dags_loader.py")
        # PostgreSQL's own user must reach its folder: not under pytest's private tmp folders.
        self.pg_folder = Path(tempfile.mkdtemp(prefix="metaflow-airflow-pg-"))
        self.postgres = Postgres(self.pg_folder, self.logs / "postgres.log")
        self.postgres.start()
        self.postgres.create_database()
        self.redis.start()
        self.moto = MotoServer(self.root / "moto")
        bucket = self.moto.bucket()
        self.metadata = MetadataService(self.root / "metadata-service", self.python)
        self.env = self._environment(bucket)
        self._airflow("db", "migrate")
        if self.major >= 3:
            passwords = self.home / "passwords.json"
            passwords.write_text(json.dumps({USER: self.password}))
        else:
            self._airflow("users", "create", "--username", USER, "--password", self.password,
                          "--role", "Admin", "--firstname", "A", "--lastname", "Dmin",
                          "--email", "admin@example.com")  # fmt: skip
        for name in self.component_names():
            self.start_component(name)
        wait_until_up("the API server", f"{self.api_url}/health" if self.major < 3
                      else f"{self.api_url}/api/v2/monitor/health", self.processes["api"],
                      timeout=180)  # fmt: skip
        self.wait_healthy()

    def component_names(self) -> list[str]:
        names = ["api", "scheduler", "triggerer"]
        if self.major >= 3:
            names.append("dag-processor")
        return names + [f"worker{i}" for i in range(1, self.workers + 1)]

    def component_env(self, name: str) -> dict[str, str]:
        """The environment of one component: the stack's, with a loader cache of its own (each
        component stands for a machine of its own)."""
        env = dict(self.env)
        env["METAFLOW_AIRFLOW_CACHE_DIR"] = str(self.root / "cache" / name)
        return env

    def parse_as(self, name: str, loader: Path) -> None:
        """A full parse of the loader file ``loader`` with component ``name``'s environment,
        as one of its earlier tasks would have made: fills that machine's last-known-good
        cache with every DAG of the file."""
        env = self.component_env(name)
        done = subprocess.run([self.python, str(loader)], check=False, env=env, cwd=self.root,
                              capture_output=True, text=True)  # fmt: skip
        if done.returncode != 0:
            raise RuntimeError(f"parsing {loader.name} as {name} failed:\n{done.stderr[-3000:]}")

    def start_component(self, name: str) -> subprocess.Popen:
        """Start one Airflow component (again: a restart) by its name in the stack."""
        env = self.component_env(name)
        if name == "api":
            argv = (["api-server", "--host", "127.0.0.1", "--port", str(self.api_port)]
                    if self.major >= 3 else
                    ["webserver", "--hostname", "127.0.0.1", "--port", str(self.api_port),
                     "--workers", "1"])  # fmt: skip
        elif name.startswith("worker"):
            env["AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT"] = str(free_port())
            argv = ["celery", "worker", "--celery-hostname", f"{name}@%h", "--concurrency",
                    str(WORKER_CONCURRENCY), "--without-mingle", "--without-gossip"]  # fmt: skip
        else:
            argv = [name]
        process = start([str(self.bin / "airflow"), *argv], self.logs / f"{name}.log", env)
        self.processes[name] = process
        return process

    def stop_component(self, name: str) -> None:
        stop(self.processes[name], timeout=30)

    def wait_healthy(self, timeout: float = 180) -> None:
        """Until the scheduler, the triggerer (and the DAG processor) report healthy heartbeats
        and every Celery worker said it is ready."""
        deadline = time.monotonic() + timeout
        while True:
            for name, process in self.processes.items():
                if process.poll() is not None:
                    raise RuntimeError(f"{name} exited ({process.returncode}): see {self.logs}")
            unhealthy = self.api.unhealthy() + [
                name for name in self.processes
                if name.startswith("worker") and b" ready." not in self._log(name)
            ]  # fmt: skip
            if not unhealthy:
                return
            if time.monotonic() > deadline:
                raise RuntimeError(f"not healthy after {timeout} s: {unhealthy}; see {self.logs}")
            time.sleep(1)

    def _log(self, name: str) -> bytes:
        path = self.logs / f"{name}.log"
        return path.read_bytes() if path.exists() else b""

    def stop(self) -> None:
        """Every process of the stack, its children with it; the PostgreSQL folder."""
        with ThreadPoolExecutor(max(1, len(self.processes))) as pool:  # all at once
            list(pool.map(lambda process: stop(process, timeout=15), self.processes.values()))
        if self.moto is not None:
            self.moto.stop()
        if self.metadata is not None:
            self.metadata.stop()
        self.redis.stop()
        if self.postgres is not None:
            self.postgres.stop()
            shutil.rmtree(self.pg_folder, ignore_errors=True)

    def _airflow(self, *args: str) -> None:
        done = subprocess.run([str(self.bin / "airflow"), *args], check=False, env=self.env,
                              capture_output=True, text=True)  # fmt: skip
        if done.returncode != 0:
            raise RuntimeError(f"airflow {' '.join(args)} failed:\n{done.stderr[-3000:]}")

    def _environment(self, bucket: str) -> dict[str, str]:
        assert self.postgres is not None and self.moto is not None and self.metadata is not None
        env = {k: v for k, v in os.environ.items() if not k.startswith(_PRIVATE_PREFIXES)}
        env["PATH"] = f"{self.bin}{os.pathsep}{env.get('PATH', '')}"
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
        env.update(AWS_ENV)
        env.update(_airflow_settings(self, self.postgres, self.redis))
        metaflow = self.root / "metaflow"
        metaflow.mkdir(exist_ok=True)
        env.update(
            {
                "METAFLOW_AIRFLOW_STORE": f"{bucket}/flows",
                "METAFLOW_AIRFLOW_STORAGE_OPTIONS": json.dumps(self.moto.storage_options),
                "METAFLOW_DEFAULT_DATASTORE": "s3",
                "METAFLOW_DATASTORE_SYSROOT_S3": f"{bucket}/metaflow",
                "METAFLOW_S3_ENDPOINT_URL": self.moto.endpoint,
                "METAFLOW_DEFAULT_METADATA": "local",
                # The metadata service, for flows published with --metadata service: where it
                # is comes from here (each worker's configuration), never from a manifest.
                "METAFLOW_SERVICE_URL": self.metadata.url,
                "METAFLOW_DATASTORE_SYSROOT_LOCAL": str(metaflow),
                "METAFLOW_USER": "tester",
                # A task's parse always asks the store: the strictest case for a run's version.
                "METAFLOW_AIRFLOW_CACHE_FRESH_SECONDS": "0",
            }
        )
        return env


def _airflow_settings(stack: Stack, postgres: Postgres, redis: Redis) -> dict[str, str]:
    from cryptography.fernet import Fernet

    database = postgres.url
    settings = {
        "AIRFLOW_HOME": str(stack.home),
        "CORE__DAGS_FOLDER": str(stack.home / "dags"),
        "CORE__LOAD_EXAMPLES": "False",
        "CORE__EXECUTOR": "CeleryExecutor",
        "CORE__FERNET_KEY": Fernet.generate_key().decode(),
        "CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
        "CORE__PARALLELISM": "64",
        "CORE__MAX_ACTIVE_RUNS_PER_DAG": "32",
        "CORE__MAX_ACTIVE_TASKS_PER_DAG": "32",
        "DATABASE__SQL_ALCHEMY_CONN": database,
        "CELERY__BROKER_URL": redis.url,
        "CELERY__RESULT_BACKEND": "db+" + database,
        "CELERY__WORKER_CONCURRENCY": str(WORKER_CONCURRENCY),
        # each task inherits the loader's imports from its worker (docs/operations.md)
        "CELERY__CELERY_CONFIG_OPTIONS": "metaflow_airflow.airflow.celery_config.CELERY_CONFIG",
        "LOGGING__LOGGING_LEVEL": "INFO",
        "LOGGING__TRIGGER_LOG_SERVER_PORT": str(free_port()),
        "SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "2",
        "SCHEDULER__TASK_QUEUED_TIMEOUT": "300",
    }
    if stack.major >= 3:
        settings.update(
            {
                "API__HOST": "127.0.0.1",
                "API__PORT": str(stack.api_port),
                "API__BASE_URL": stack.api_url,
                "API__SECRET_KEY": secrets.token_hex(16),
                "API_AUTH__JWT_SECRET": secrets.token_hex(32),
                "CORE__EXECUTION_API_SERVER_URL": f"{stack.api_url}/execution/",
                "CORE__SIMPLE_AUTH_MANAGER_USERS": f"{USER}:admin",
                "CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(stack.home / "passwords.json"),
                # the dags folder as a bundle versioned by the manifest store: a run stays on
                # the DAG it was created on (docs/operations.md, "A run stays on its version")
                "DAG_PROCESSOR__DAG_BUNDLE_CONFIG_LIST": json.dumps(
                    [
                        {
                            "name": "metaflow",
                            "classpath": "metaflow_airflow.airflow.loader.bundle.ManifestStoreBundle",
                            "kwargs": {"path": str(stack.home / "dags")},
                        }
                    ]
                ),
                "DAG_PROCESSOR__REFRESH_INTERVAL": "5",
                "DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "5",
                # a task whose worker died is failed (and retried) after this many seconds
                "SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": "30",
            }
        )
    else:
        settings.update(
            {
                "WEBSERVER__WEB_SERVER_PORT": str(stack.api_port),
                "WEBSERVER__SECRET_KEY": secrets.token_hex(16),
                "WEBSERVER__BASE_URL": stack.api_url,
                "API__AUTH_BACKENDS": "airflow.providers.fab.auth_manager.api.auth.backend.basic_auth",
                "SCHEDULER__DAG_DIR_LIST_INTERVAL": "5",
                "SCHEDULER__MIN_FILE_PROCESS_INTERVAL": "5",
                "SCHEDULER__SCHEDULER_ZOMBIE_TASK_THRESHOLD": "30",
            }
        )
    return {
        name if name == "AIRFLOW_HOME" else f"AIRFLOW__{name}": value
        for name, value in settings.items()
    }


def stop_on_signals() -> None:
    """SIGINT (Ctrl-C, even where a shell started this in the background with SIGINT ignored)
    and SIGTERM raise KeyboardInterrupt, so that whatever started the stack stops it."""

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt(signal.Signals(signum).name)

    signal.signal(signal.SIGINT, interrupt)
    signal.signal(signal.SIGTERM, interrupt)


def main(argv: list[str]) -> int:
    """``make airflow``: the stack until Ctrl-C, with the examples published."""
    stop_on_signals()
    root = Path(tempfile.mkdtemp(prefix="metaflow-airflow-stack-"))
    stack = Stack(root, python=argv[1] if len(argv) > 1 else sys.executable)
    print(f"starting Airflow {stack.major} (CeleryExecutor, PostgreSQL, Redis) in {root} ...")
    try:
        stack.start()
        for flow in sorted((REPO / "examples").glob("*_flow.py"))[:3]:
            stack.publish(flow)
        print(
            f"\nAirflow UI: {stack.api_url}  login: {USER} / {stack.password}\n"
            f"manifest store: {stack.store_url} (S3 endpoint {stack.env['METAFLOW_S3_ENDPOINT_URL']},"
            f" keys 'testing')\nMetaflow metadata service: {stack.service_url}\n"
            f"logs: {stack.logs}\nCtrl-C stops everything.",
            flush=True,
        )
        while all(p.poll() is None for p in stack.processes.values()):
            time.sleep(1)
        print("a component exited: see", stack.logs, file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0
    finally:
        stack.stop()
        print("stopped; logs kept in", stack.logs)


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
