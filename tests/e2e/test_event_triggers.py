"""Event triggers on real Airflow: a flow's successful run emits its Asset and a flow with
``@trigger_on_finish`` gets an asset-triggered run; a plain Airflow DAG emitting
``x-metaflow://events/<name>`` triggers a ``@trigger`` flow, its payload becoming Parameters.

Airflow's own code does each step: ``airflow dags reserialize`` and ``airflow dags unpause``
(what an operator runs), ``dag.test()`` for the emitting run (its task's outlet records the
asset event and queues the consumers), the scheduler's ``_create_dagruns_for_dags`` (the
scheduler-loop step that turns queued asset events into a run), then the run's tasks through the
same in-process task runner ``dag.test()`` uses. (A whole ``airflow scheduler --num-runs 1`` would
also hand the new run's tasks to its executor, whose workers need an API server on Airflow 3.)
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from airflow_harness import run_dag, run_state
from helpers import AIRFLOW_HOME, user_artifacts

from metaflow_airflow.airflow.compat import AIRFLOW_V_3_0_PLUS
from metaflow_airflow.runtime.ids import metaflow_run_id

pytestmark = pytest.mark.timeout(600)

AIRFLOW = Path(sys.executable).parent / "airflow"

# What an Airflow user writes to trigger a Metaflow flow: a task with the event's Asset as an
# outlet, attaching the event's payload as the asset event's extra.
PRODUCER_DAG = """
import pendulum

try:
    from airflow.sdk import DAG, Asset, task
except ImportError:  # Airflow 2: Assets were Datasets
    from airflow import DAG
    from airflow.datasets import Dataset as Asset
    from airflow.decorators import task

DATA_READY = Asset("x-metaflow://events/data_ready")

with DAG("load_sales", schedule=None, start_date=pendulum.datetime(2025, 1, 1, tz="UTC")):

    @task(outlets=[DATA_READY])
    def load(*, outlet_events):
        outlet_events[DATA_READY].extra = {"table_name": "sales", "row_count": 42}

    load()
"""


def _airflow_cli(*args: str) -> None:
    """An ``airflow`` command against the session's Airflow home and store."""
    done = subprocess.run([str(AIRFLOW), *args], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]


def _deploy(dag_id: str) -> None:
    """Write every DAG of the dags folder to the database (as the DAG processor does) and
    unpause ``dag_id``: Airflow queues asset events only for DAGs that are not paused."""
    _airflow_cli("dags", "reserialize")
    _airflow_cli("dags", "unpause", dag_id)


def _models() -> dict[str, Any]:
    if AIRFLOW_V_3_0_PLUS:
        from airflow.models.asset import AssetDagRunQueue, AssetEvent, AssetModel

        return {"event": AssetEvent, "queue": AssetDagRunQueue, "asset": AssetModel}
    from airflow.models.dataset import DatasetDagRunQueue, DatasetEvent, DatasetModel

    return {"event": DatasetEvent, "queue": DatasetDagRunQueue, "asset": DatasetModel}


def _asset_id(session: Any, uri: str) -> int:
    from sqlalchemy import select

    asset = _models()["asset"]
    return session.scalar(select(asset.id).where(asset.uri == uri))


def asset_events(uri: str) -> list[dict[str, Any]]:
    """The events recorded on an asset (Airflow's asset events table)."""
    from airflow.utils.session import create_session
    from sqlalchemy import select

    event = _models()["event"]
    column = event.asset_id if AIRFLOW_V_3_0_PLUS else event.dataset_id
    with create_session() as session:
        rows = session.scalars(select(event).where(column == _asset_id(session, uri)))
        return [
            {"dag_id": e.source_dag_id, "run_id": e.source_run_id, "extra": dict(e.extra or {})}
            for e in rows
        ]


def queued_dags(uri: str) -> list[str]:
    """The DAGs a new event of the asset queued for a run (the asset DAG-run queue)."""
    from airflow.utils.session import create_session
    from sqlalchemy import select

    queue = _models()["queue"]
    column = queue.asset_id if AIRFLOW_V_3_0_PLUS else queue.dataset_id
    with create_session() as session:
        query = select(queue.target_dag_id).where(column == _asset_id(session, uri))
        return sorted(session.scalars(query))


def create_asset_triggered_run(dag_id: str) -> tuple[str, list[str]]:
    """One pass of the scheduler's run creation; returns the asset-triggered run of ``dag_id``
    it created and the URIs of the asset events that run consumed."""
    from airflow.jobs.job import Job
    from airflow.jobs.scheduler_job_runner import SchedulerJobRunner
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session
    from airflow.utils.sqlalchemy import prohibit_commit
    from sqlalchemy import select

    runner = SchedulerJobRunner(job=Job())
    with create_session() as session, prohibit_commit(session) as guard:
        runner._create_dagruns_for_dags(guard, session)
    kind = "asset_triggered" if AIRFLOW_V_3_0_PLUS else "dataset_triggered"
    with create_session() as session:
        query = select(DagRun).where(DagRun.dag_id == dag_id, DagRun.run_type == kind)
        (dag_run,) = session.scalars(query).all()
        consumed = (
            dag_run.consumed_asset_events
            if AIRFLOW_V_3_0_PLUS
            else (dag_run.consumed_dataset_events)
        )
        uris = [(e.asset if AIRFLOW_V_3_0_PLUS else e.dataset).uri for e in consumed]
        return dag_run.run_id, uris


def run_dag_run(dag: Any, run_id: str) -> str:
    """Run the tasks of an existing DAG run to the end, as ``dag.test()`` runs its own run
    (Airflow's in-process task runner, with the run's consumed asset events); its final state."""
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session
    from airflow.utils.state import DagRunState, TaskInstanceState
    from sqlalchemy import select

    if AIRFLOW_V_3_0_PLUS:
        from airflow.sdk.definitions.dag import _run_task
    else:
        # Airflow 2's user table (ab_user, which task_instance_note references) is in the FAB
        # provider's models; flushing this run's task instances makes SQLAlchemy sort every
        # table, so load them, as Airflow's web server does (2.11 fails without them).
        import airflow.providers.fab.auth_manager.models  # noqa: F401
        from airflow.models.dag import _run_task

    with create_session() as session:
        dag_run = session.scalar(select(DagRun).where(DagRun.run_id == run_id))
        dag_run.state = DagRunState.RUNNING
        session.commit()
        dag_run.dag = _scheduler_dag(dag, dag_run, session)
        while dag_run.state == DagRunState.RUNNING:
            session.expire_all()
            schedulable, _ = dag_run.update_state(session=session)
            for ti in schedulable:
                ti.try_number += 1
                ti.state = TaskInstanceState.SCHEDULED
            session.commit()
            for ti in dag_run.get_task_instances(session=session):
                if ti.state != TaskInstanceState.SCHEDULED:
                    continue
                task = dag.task_dict[ti.task_id]
                if not AIRFLOW_V_3_0_PLUS:
                    ti.task = task
                    _run_task(ti=ti, session=session)
                elif "task" in _run_task.__code__.co_varnames:  # Airflow 3.1+
                    _run_task(ti=ti, task=task, run_triggerer=True)
                else:  # Airflow 3.0
                    ti.task = task
                    _run_task(ti=ti, run_triggerer=True)
        return run_state(dag_run)


def _scheduler_dag(dag: Any, dag_run: Any, session: Any) -> Any:
    """The DAG as the scheduler sees it: serialized from the database on Airflow 3.1+."""
    try:
        from airflow.models.dagbag import DBDagBag
    except ImportError:  # Airflow 2 and 3.0 schedule the DAG object itself in dag.test()
        return dag
    return DBDagBag().get_dag_for_run(dag_run, session=session)


@pytest.fixture
def producer_dag() -> Iterator[Path]:
    """A plain Airflow DAG file next to dags_loader.py, removed after the test (the dags
    folder is the session's)."""
    path = AIRFLOW_HOME / "dags" / "load_sales.py"
    path.write_text(PRODUCER_DAG)
    yield path
    path.unlink()


def test_upstream_run_emits_its_asset_and_the_downstream_flow_runs(publish, dagbag, store_url):
    publish("upstream_flow.py")
    publish("downstream_flow.py")
    bag = dagbag(store_url)
    assert bag.import_errors == {}
    downstream = bag.get_dag("DownstreamFlow")
    _deploy("DownstreamFlow")

    upstream_run = run_dag(bag.get_dag("UpstreamFlow"))
    assert run_state(upstream_run) == "success"

    # The end task's outlet recorded the asset event, described like Metaflow's run event...
    upstream_metaflow_run = metaflow_run_id(upstream_run.run_id, "UpstreamFlow")
    (event,) = asset_events("x-metaflow://flows/UpstreamFlow")
    assert event["dag_id"] == "UpstreamFlow" and event["run_id"] == upstream_run.run_id
    assert event["extra"]["run_id"] == upstream_metaflow_run
    assert event["extra"]["flow_name"] == "UpstreamFlow"
    assert event["extra"]["pathspec"].startswith(f"UpstreamFlow/{upstream_metaflow_run}/end/")
    # ...and queued the DAG scheduled on it.
    assert queued_dags("x-metaflow://flows/UpstreamFlow") == ["DownstreamFlow"]

    run_id, consumed = create_asset_triggered_run("DownstreamFlow")
    assert consumed == ["x-metaflow://flows/UpstreamFlow"]
    assert queued_dags("x-metaflow://flows/UpstreamFlow") == []

    assert run_dag_run(downstream, run_id) == "success"
    artifacts = user_artifacts("DownstreamFlow", metaflow_run_id(run_id, "DownstreamFlow"))
    assert artifacts["start"]["factor_seen"] == 2
    # The downstream run emitted its own asset in turn.
    (own,) = asset_events("x-metaflow://flows/DownstreamFlow")
    assert own["run_id"] == run_id


def test_plain_airflow_dag_triggers_a_flow_with_its_payload(
    publish, dagbag, store_url, producer_dag
):
    publish("event_flow.py")
    bag = dagbag(store_url)
    assert bag.import_errors == {}
    assert sorted(bag.dag_ids) == ["EventFlow", "load_sales"]
    _deploy("EventFlow")

    producer_run = run_dag(bag.get_dag("load_sales"))
    assert run_state(producer_run) == "success"
    (event,) = asset_events("x-metaflow://events/data_ready")
    assert event["extra"] == {"table_name": "sales", "row_count": 42}
    assert queued_dags("x-metaflow://events/data_ready") == ["EventFlow"]

    run_id, consumed = create_asset_triggered_run("EventFlow")
    assert consumed == ["x-metaflow://events/data_ready"]
    assert run_dag_run(bag.get_dag("EventFlow"), run_id) == "success"

    start = user_artifacts("EventFlow", metaflow_run_id(run_id, "EventFlow"))["start"]
    # table and rows come from the payload (typed as their Parameters), note keeps its default.
    assert start["received"] == {"table": "sales", "rows": 42, "note": "from the default"}
