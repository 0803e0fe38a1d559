"""A small client of Airflow's public REST API, on httpx: the endpoints that trigger, follow,
list and stop DAG runs, on Airflow 3 (``/api/v2``, a JWT from ``/auth/token``) and Airflow 2
(``/api/v1``, basic auth or a bearer token).

Why httpx and not ``apache-airflow-client``: that client is generated per API version (3.x
speaks only v2, 2.x only v1) and the two cannot be installed side by side, while users publish
to both lines from one machine; the dozen calls needed here are plain JSON over HTTP, httpx is
already a dependency of Airflow itself, and it gives one place to turn every failure (no
server, 401/403, a DAG not parsed yet) into one line. Imports neither Airflow nor Metaflow.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx
from typing_extensions import Self

from metaflow_airflow.errors import AirflowApiError
from metaflow_airflow.settings import Settings

# Terminal DAG-run states, as both API versions spell them.
FINISHED_STATES = ("success", "failed")


@dataclass(frozen=True)
class ApiCredentials:
    """Where the API is and who calls it: a token, or a user name and password."""

    url: str
    username: str | None = None
    password: str | None = None
    token: str | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> ApiCredentials:
        if not settings.api_url:
            raise AirflowApiError(
                "no Airflow API URL: set METAFLOW_AIRFLOW_API_URL (e.g. http://localhost:8080)"
            )
        return cls(
            url=settings.api_url.rstrip("/"),
            username=settings.api_username,
            password=settings.api_password.get_secret_value() if settings.api_password else None,
            token=settings.api_token.get_secret_value() if settings.api_token else None,
        )


class AirflowApi:
    """One Airflow API server. Every method raises :class:`AirflowApiError` with one line."""

    def __init__(self, credentials: ApiCredentials, *, timeout: float = 30.0) -> None:
        self.credentials = credentials
        self.base_url = credentials.url
        self._http = httpx.Client(base_url=self.base_url, timeout=timeout)
        self._prefix: str | None = None

    # -- connection ------------------------------------------------------------------------

    @property
    def api_version(self) -> int:
        """3 for an Airflow 3 server (``/api/v2``), 2 for Airflow 2 (``/api/v1``)."""
        return 3 if self._api_prefix() == "/api/v2" else 2

    def _api_prefix(self) -> str:
        if self._prefix is None:
            # The health endpoints need no login, so this also tells an absent server apart.
            if self._send("GET", "/api/v2/monitor/health", check=False).status_code == 200:
                self._prefix = "/api/v2"
                self._login_v2()
            elif self._send("GET", "/api/v1/health", check=False).status_code == 200:
                self._prefix = "/api/v1"
                self._login_v1()
            else:
                raise AirflowApiError(f"{self.base_url} is not an Airflow API server")
        return self._prefix

    def _login_v2(self) -> None:
        c = self.credentials
        if c.token:
            self._http.headers["Authorization"] = f"Bearer {c.token}"
            return
        if not c.username:
            return  # an API server whose auth manager lets everyone in
        response = self._send(
            "POST",
            "/auth/token",
            json={"username": c.username, "password": c.password or ""},
            check=False,
        )
        if response.status_code in (401, 403):
            raise AirflowApiError(
                f"{self.base_url}: login as {c.username!r} refused ({response.status_code}): "
                "check METAFLOW_AIRFLOW_API_USERNAME / METAFLOW_AIRFLOW_API_PASSWORD"
            )
        self._raise_for(response, "login")
        self._http.headers["Authorization"] = f"Bearer {response.json()['access_token']}"

    def _login_v1(self) -> None:
        c = self.credentials
        if c.token:
            self._http.headers["Authorization"] = f"Bearer {c.token}"
        elif c.username:
            self._http.auth = httpx.BasicAuth(c.username, c.password or "")
            # Airflow 2 answers a wrong password with 403 on every call: ask once, and say so.
            response = self._send("GET", "/api/v1/dags", params={"limit": 1}, check=False)
            if response.status_code in (401, 403):
                raise AirflowApiError(
                    f"{self.base_url}: login as {c.username!r} refused "
                    f"({response.status_code}): check METAFLOW_AIRFLOW_API_USERNAME / "
                    "METAFLOW_AIRFLOW_API_PASSWORD"
                )

    def _send(self, method: str, path: str, *, check: bool = True, **kwargs: Any) -> httpx.Response:
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.TransportError as exc:
            raise AirflowApiError(
                f"cannot reach the Airflow API at {self.base_url}: {_reason(exc)} "
                "(is the API server running? METAFLOW_AIRFLOW_API_URL)"
            ) from exc
        if check:
            self._raise_for(response, f"{method} {path}")
        return response

    def _raise_for(self, response: httpx.Response, what: str) -> None:
        status = response.status_code
        if status < 400:
            return
        anonymous = not (self.credentials.username or self.credentials.token)
        if status == 401 or (status == 403 and anonymous):  # Airflow 2 answers 403 to no login
            raise AirflowApiError(
                f"{self.base_url}: not authenticated ({status}): set METAFLOW_AIRFLOW_API_TOKEN, "
                "or METAFLOW_AIRFLOW_API_USERNAME and METAFLOW_AIRFLOW_API_PASSWORD"
            )
        if status == 403:
            raise AirflowApiError(
                f"{self.base_url}: forbidden (403): the user {self.credentials.username or ''!r} "
                f"may not {what}"
            )
        raise AirflowApiError(f"{self.base_url}: {what} failed ({status}): {_detail(response)}")

    def _api(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self._send(method, self._api_prefix() + path, **kwargs)
        return response.json() if response.content else None

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- DAGs ------------------------------------------------------------------------------

    def dag(self, dag_id: str) -> dict[str, Any] | None:
        """The DAG as Airflow knows it, or None when Airflow has not parsed it (yet)."""
        response = self._send("GET", f"{self._api_prefix()}/dags/{_q(dag_id)}", check=False)
        if response.status_code == 404:
            return None
        self._raise_for(response, f"read DAG {dag_id}")
        return response.json()

    def wait_for_dag(
        self, dag_id: str, timeout: float, *, on_wait: Callable[[], None] | None = None
    ) -> dict[str, Any]:
        """The DAG, once Airflow's DAG processor has parsed it: a flow published a moment ago
        appears at the loader file's next parse. Raises after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        told = False
        while True:
            dag = self.dag(dag_id)
            if dag is not None and dag.get("is_active", True) is not False:
                return dag
            if time.monotonic() >= deadline:
                raise AirflowApiError(
                    f"DAG {dag_id!r} is not on {self.base_url} after {timeout:g} s: Airflow has "
                    "not parsed it (is it published to the store the loader reads? "
                    "`metaflow-airflow list`)"
                )
            if on_wait is not None and not told:
                on_wait()
                told = True
            time.sleep(min(1.0, max(deadline - time.monotonic(), 0)))

    def set_paused(self, dag_id: str, paused: bool) -> None:
        params = {} if self.api_version == 3 else {"update_mask": "is_paused"}
        self._api("PATCH", f"/dags/{_q(dag_id)}", params=params, json={"is_paused": paused})

    def delete_dag(self, dag_id: str) -> bool:
        """Remove the DAG's records (runs, task instances) from Airflow; False if none."""
        response = self._send("DELETE", f"{self._api_prefix()}/dags/{_q(dag_id)}", check=False)
        if response.status_code == 404:
            return False
        self._raise_for(response, f"delete DAG {dag_id}")
        return True

    # -- runs ------------------------------------------------------------------------------

    def trigger(self, dag_id: str, conf: dict[str, Any]) -> dict[str, Any]:
        body: dict[str, Any] = {"conf": conf}
        if self.api_version == 3:
            body["logical_date"] = None  # required (nullable) on v2: a run at "now"
        return self._api("POST", f"/dags/{_q(dag_id)}/dagRuns", json=body)

    def dag_run(self, dag_id: str, run_id: str) -> dict[str, Any]:
        return self._api("GET", f"/dags/{_q(dag_id)}/dagRuns/{_q(run_id)}")

    def dag_runs(self, dag_id: str, limit: int) -> list[dict[str, Any]]:
        """The newest runs first."""
        order = "-run_after" if self.api_version == 3 else "-execution_date"
        found = self._api(
            "GET", f"/dags/{_q(dag_id)}/dagRuns", params={"order_by": order, "limit": limit}
        )
        return list(found["dag_runs"])

    def set_run_state(self, dag_id: str, run_id: str, state: str) -> dict[str, Any]:
        """``failed`` stops a run: Airflow marks its unfinished tasks and kills running ones."""
        return self._api("PATCH", f"/dags/{_q(dag_id)}/dagRuns/{_q(run_id)}", json={"state": state})

    def task_instances(self, dag_id: str, run_id: str) -> list[dict[str, Any]]:
        found = self._api(
            "GET",
            f"/dags/{_q(dag_id)}/dagRuns/{_q(run_id)}/taskInstances",
            params={"limit": 1000},
        )
        return list(found["task_instances"])

    def task_log(self, dag_id: str, run_id: str, task: dict[str, Any]) -> str:
        """The text of a task instance's log (its last try)."""
        try_number = max(int(task.get("try_number") or 1), 1)
        params: dict[str, Any] = {"full_content": "true"}
        if task.get("map_index", -1) != -1:
            params["map_index"] = task["map_index"]
        path = (
            f"{self._api_prefix()}/dags/{_q(dag_id)}/dagRuns/{_q(run_id)}/taskInstances/"
            f"{_q(task['task_id'])}/logs/{try_number}"
        )
        response = self._send("GET", path, params=params, headers={"Accept": "application/json"})
        content = response.json().get("content", "")
        if isinstance(content, list):  # Airflow 3: structured log events
            return "\n".join(_log_line(event) for event in content)
        return str(content)


def _log_line(event: Any) -> str:
    if isinstance(event, dict):
        return str(event.get("event", ""))
    return str(event)


def _q(part: str) -> str:
    return quote(part, safe="")


def _reason(exc: httpx.TransportError) -> str:
    text = str(exc) or type(exc).__name__
    return text.splitlines()[0]


def _detail(response: httpx.Response) -> str:
    try:
        detail = response.json().get("detail", response.text)
    except ValueError:
        detail = response.text
    if isinstance(detail, list):  # validation errors: the first one
        detail = detail[0].get("msg", detail[0]) if detail else ""
    return " ".join(str(detail).split())[:300]
