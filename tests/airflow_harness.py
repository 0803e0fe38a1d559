"""Running and inspecting DAGs in this process, on every Airflow line the project supports: what
the tests, the demo and the benchmarks need and the package does not (a DagBag, ``dag.test()``,
stored XComs, extra links, serialized DAGs). Version differences use the package's compat flags.
"""

from __future__ import annotations

from typing import Any

from packaging.version import Version

from metaflow_airflow.airflow.compat import AIRFLOW_V_3_0_PLUS, AIRFLOW_VERSION, DAG, Asset


def dag_bag_class() -> type:
    """DagBag parses a dags folder; Airflow 3.1 moved it from models to dag_processing."""
    try:
        from airflow.dag_processing.dagbag import DagBag
    except ImportError:  # Airflow 2.x and 3.0
        from airflow.models.dagbag import DagBag
    return DagBag


def run_state(dag_run: Any) -> str:
    """A DagRun's state as plain text: an enum on Airflow 3, an enum or a string on Airflow 2
    (``dag.test()`` returns the run either way)."""
    return str(getattr(dag_run.state, "value", dag_run.state))


def run_dag(dag: DAG, run_conf: dict[str, Any] | None = None) -> Any:
    """Run ``dag`` once in this process (``dag.test()``) and return its DagRun, finished.

    Airflow 2's ``dag.test()`` lets a task's AirflowTaskTimeout (a BaseException there) escape and
    abandons the run while it is still running; the timed-out task is already marked failed, so
    settle the run as the scheduler would. Tasks that could still have run are not run."""
    if AIRFLOW_V_3_0_PLUS:
        if Version(AIRFLOW_VERSION) < Version("3.1"):
            _activate_outlet_assets(dag)
        return dag.test(run_conf=run_conf)
    from airflow.exceptions import AirflowTaskTimeout
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session

    try:
        return dag.test(run_conf=run_conf)
    except AirflowTaskTimeout:
        with create_session() as session:
            dag_run = DagRun.find(dag_id=dag.dag_id, session=session)[-1]  # the newest
            dag_run.dag = dag
            for _ in dag.tasks:  # each pass settles one more layer of downstream tasks
                dag_run.update_state(session=session)
                if dag_run.state != "running":
                    break
            session.commit()
            session.refresh(dag_run)
            session.expunge(dag_run)
        return dag_run


def _activate_outlet_assets(dag: DAG) -> None:
    """Airflow 3.0's task runner refuses outlets whose asset the scheduler has not activated
    yet, and its ``dag.test()`` does not activate them (3.1 does): do what the scheduler would."""
    from airflow.models.asset import AssetActive, AssetModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    assets = {(a.name, a.uri) for task in dag.tasks for a in task.outlets if isinstance(a, Asset)}
    with create_session() as session:
        for name, uri in sorted(assets):
            if session.scalar(select(AssetModel.id).where(AssetModel.uri == uri)) is None:
                session.add(AssetModel(name=name, uri=uri))
            if session.get(AssetActive, (name, uri)) is None:
                session.add(AssetActive(name=name, uri=uri))


def stored_xcom(dag_run: Any, task_id: str, key: str, map_index: int = -1) -> Any:
    """An XCom value a task instance left in Airflow's database (its XCom tab in the UI).
    Airflow 3 keeps XCom rows in XComModel and reads them through the API server only."""
    if not AIRFLOW_V_3_0_PLUS:
        from airflow.models.xcom import XCom

        return XCom.get_one(
            run_id=dag_run.run_id,
            dag_id=dag_run.dag_id,
            task_id=task_id,
            key=key,
            map_index=map_index,
        )
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    query = select(XComModel).where(
        XComModel.dag_id == dag_run.dag_id,
        XComModel.run_id == dag_run.run_id,
        XComModel.task_id == task_id,
        XComModel.map_index == map_index,
        XComModel.key == key,
    )
    with create_session() as session:
        row = session.scalars(query).first()
        return None if row is None else XComModel.deserialize_value(row)


def extra_link_url(dag_run: Any, task: Any, link_name: str, map_index: int = -1) -> str | None:
    """The URL the UI shows for a task instance's extra link: Airflow 3 stores it (as an XCom)
    when the task ends; Airflow 2's webserver asks the link class when the page is shown."""
    if AIRFLOW_V_3_0_PLUS:
        (link,) = [link for link in task.operator_extra_links if link.name == link_name]
        return stored_xcom(dag_run, task.task_id, link.xcom_key, map_index)
    instance = dag_run.get_task_instance(task.task_id, map_index=map_index)
    return task.get_extra_links(instance, link_name)


def loaded_plugin_names() -> set[str]:
    """Names of the plugins Airflow loaded (entry points, plugins folder, providers)."""
    from airflow import plugins_manager

    return {info["name"] for info in plugins_manager.get_plugin_info()}



def serialize_dag(dag: DAG) -> dict:
    """Airflow's serialized form of a DAG: what Airflow 3 compares to decide on a new version."""
    from airflow.serialization import serialized_objects

    # Airflow 3.3 renamed SerializedDAG to DagSerialization.
    serializer = getattr(serialized_objects, "DagSerialization", None) or getattr(
        serialized_objects, "SerializedDAG"
    )
    return serializer.to_dict(dag)
