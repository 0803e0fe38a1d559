"""A run's conf that cannot reach the flow is refused by the start task before Metaflow runs
anything, on real Airflow (local compute), instead of failing inside Metaflow with an OS error
or silently running with a default; ``unknown_run_conf=warn`` relaxes unknown keys."""

from __future__ import annotations

import pytest
from airflow_harness import run_dag, run_state
from helpers import METAFLOW_SYSROOT, publisher

from metaflow_airflow.runtime.ids import metaflow_run_id
from metaflow_airflow.settings import get_settings

pytestmark = pytest.mark.timeout(300)


@pytest.fixture(scope="module")
def store_url(tmp_path_factory) -> str:
    return f"file://{tmp_path_factory.mktemp('run-conf-store')}"


@pytest.fixture(scope="module")
def published(store_url: str) -> str:
    publisher(store_url)("parameters_flow.py")
    return store_url


@pytest.fixture
def parameters_dag(published: str, dagbag):
    """Parsed anew for each run, as Airflow does: in one process, dag.test() carries one run's
    conf into the next run's params."""
    bag = dagbag(published)
    assert bag.import_errors == {}
    return bag.get_dag("ParametersFlow")


def metaflow_run_exists(dag_run) -> bool:
    run_id = metaflow_run_id(dag_run.run_id, dag_run.dag_id)
    return (METAFLOW_SYSROOT / ".metaflow" / "ParametersFlow" / run_id).exists()


@pytest.mark.parametrize(
    "conf",
    [{"cout": 5}, {"text": "a\x00b"}, {"text": "x" * 200_000}],
    ids=["unknown key", "NUL", "200 KB"],
)
def test_a_conf_that_cannot_reach_the_flow_fails_the_run_before_metaflow(parameters_dag, conf):
    dag_run = run_dag(parameters_dag, run_conf=conf)
    assert run_state(dag_run) == "failed"
    start = dag_run.get_task_instance("start")
    assert str(getattr(start.state, "value", start.state)) == "failed"
    assert start.try_number <= 1  # refused, not retried
    assert not metaflow_run_exists(dag_run)


def test_unknown_keys_can_be_only_a_warning(parameters_dag, monkeypatch):
    monkeypatch.setenv("METAFLOW_AIRFLOW_UNKNOWN_RUN_CONF", "warn")
    get_settings.cache_clear()
    try:
        dag_run = run_dag(parameters_dag, run_conf={"cout": 5, "count": 1})
    finally:
        get_settings.cache_clear()
    assert run_state(dag_run) == "success"
    assert metaflow_run_exists(dag_run)
