"""Airflow's public REST API, as a CI job or a user's script calls it: v2 with a JWT from
``/auth/token`` on Airflow 3, v1 with basic auth on Airflow 2. Only what the topology tests
(and a Metaflow Deployer built on this stack) need: health, DAGs, runs and task instances."""

from __future__ import annotations

import base64
import json
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

FINISHED = {"success", "failed"}


class ApiError(RuntimeError):
    """The API answered with an error status."""

    def __init__(self, status: int, method: str, path: str, body: str) -> None:
        super().__init__(f"{method} {path}: HTTP {status}: {body[:500]}")
        self.status = status


class AirflowApi:
    """The REST API of the stack's API server (webserver on Airflow 2)."""

    def __init__(self, base_url: str, user: str, password: str, major: int) -> None:
        self.base_url = base_url
        self.user, self.password = user, password
        self.major = major
        self.prefix = "/api/v2" if major >= 3 else "/api/v1"
        self._token: str | None = None

    # --- authentication ----------------------------------------------------------------------

    def token(self) -> str:
        """A JWT for the user (Airflow 3): what ``Authorization: Bearer`` carries."""
        body = json.dumps({"username": self.user, "password": self.password}).encode()
        request = urllib.request.Request(
            f"{self.base_url}/auth/token",
            data=body,
            method="POST",
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.load(response)["access_token"]

    def headers(self) -> dict[str, str]:
        """The ``Authorization`` header of a request."""
        if self.major < 3:
            basic = base64.b64encode(f"{self.user}:{self.password}".encode()).decode()
            return {"Authorization": f"Basic {basic}"}
        if self._token is None:
            self._token = self.token()
        return {"Authorization": f"Bearer {self._token}"}

    def call(self, method: str, path: str, body: Any = None) -> Any:
        """One API call (``path`` below the API's prefix); the decoded JSON answer."""
        data = None if body is None else json.dumps(body).encode()
        url = f"{self.base_url}{self.prefix}{path}"
        for attempt in (1, 2):
            headers = {"Content-Type": "application/json", **self.headers()}
            request = urllib.request.Request(url, data=data, method=method, headers=headers)
            try:
                with urllib.request.urlopen(request, timeout=60) as response:
                    text = response.read().decode()
                    return json.loads(text) if text else None
            except urllib.error.HTTPError as exc:
                if exc.code == 401 and attempt == 1 and self.major >= 3:
                    self._token = None  # expired: log in again
                    continue
                raise ApiError(exc.code, method, path, exc.read().decode(errors="replace"))
        raise AssertionError("unreachable")

    # --- health ------------------------------------------------------------------------------

    def unhealthy(self) -> list[str]:
        """The components whose heartbeat is not healthy ([] when all are), from the health
        endpoint (no login needed); every component when the server does not answer."""
        path = "/api/v2/monitor/health" if self.major >= 3 else "/health"
        try:
            with urllib.request.urlopen(f"{self.base_url}{path}", timeout=10) as response:
                health = json.load(response)
        except (urllib.error.URLError, OSError, ValueError):
            return ["api"]
        wanted = ["metadatabase", "scheduler", "triggerer"]
        if self.major >= 3:
            wanted.append("dag_processor")
        return [name for name in wanted if (health.get(name) or {}).get("status") != "healthy"]

    # --- DAGs and runs -----------------------------------------------------------------------

    def dag(self, dag_id: str) -> dict[str, Any] | None:
        try:
            return self.call("GET", f"/dags/{_q(dag_id)}")
        except ApiError as exc:
            if exc.status == 404:
                return None
            raise

    def wait_for_dag(self, dag_id: str, timeout: float = 120) -> dict[str, Any]:
        """Until the DAG processor has put ``dag_id`` into the database."""
        deadline = time.monotonic() + timeout
        while True:
            dag = self.dag(dag_id)
            if dag is not None and not dag.get("has_import_errors"):
                return dag
            if time.monotonic() > deadline:
                raise TimeoutError(f"DAG {dag_id} did not appear within {timeout} s")
            time.sleep(1)

    def trigger(self, dag_id: str, conf: dict[str, Any] | None = None) -> str:
        """Start a run of ``dag_id``; returns its run id."""
        body: dict[str, Any] = {"conf": conf or {}}
        if self.major >= 3:
            body["logical_date"] = None
        return self.call("POST", f"/dags/{_q(dag_id)}/dagRuns", body)["dag_run_id"]

    def run(self, dag_id: str, run_id: str) -> dict[str, Any]:
        return self.call("GET", f"/dags/{_q(dag_id)}/dagRuns/{_q(run_id)}")

    def wait_for_run(self, dag_id: str, run_id: str, timeout: float = 300) -> str:
        """Until the run is finished; returns its state (``success`` or ``failed``)."""
        deadline = time.monotonic() + timeout
        while True:
            state = self.run(dag_id, run_id)["state"]
            if state in FINISHED:
                return state
            if time.monotonic() > deadline:
                raise TimeoutError(f"run {run_id} of {dag_id} still {state} after {timeout} s")
            time.sleep(1)

    def task_instances(self, dag_id: str, run_id: str) -> list[dict[str, Any]]:
        """Every task instance of a run (mapped ones included)."""
        path = f"/dags/{_q(dag_id)}/dagRuns/{_q(run_id)}/taskInstances?limit=1000"
        return self.call("GET", path)["task_instances"]


def _q(text: str) -> str:
    return urllib.parse.quote(text, safe="")
