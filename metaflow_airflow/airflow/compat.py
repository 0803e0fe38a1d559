"""The one place that knows how Airflow 2 and 3 (and provider versions) differ.

Everything else imports Airflow's authoring objects from here. Each shim says why it exists, so it
can go when the oldest supported Airflow (2.10, what Amazon MWAA still runs) no longer needs it.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version
from typing import Any

from airflow import __version__ as AIRFLOW_VERSION
from packaging.version import Version

AIRFLOW_V_3_0_PLUS = Version(Version(AIRFLOW_VERSION).base_version) >= Version("3.0.0")

if AIRFLOW_V_3_0_PLUS:  # Airflow 3 moved authoring objects to the Task SDK.
    from airflow.sdk import (
        DAG,
        Asset,
        AssetAll,
        BaseOperator,
        BaseOperatorLink,
        Param,
        get_parsing_context,
    )

    try:  # the Task SDK exports SkipMixin from Airflow 3.1; 3.0 has it in the standard provider
        from airflow.sdk import SkipMixin
    except ImportError:
        from airflow.providers.standard.utils.skipmixin import SkipMixin
    from airflow.sdk.bases.xcom import BaseXCom as XCom
    from airflow.sdk.definitions.taskgroup import MappedTaskGroup

    try:  # the Task SDK has it from Airflow 3.1; 3.0 in core
        from airflow.sdk import AssetOrTimeSchedule
    except ImportError:
        from airflow.timetables.assets import AssetOrTimeSchedule
else:  # pragma: no cover - exercised by the Airflow 2 tox environments
    # Assets were Datasets on Airflow 2 (2.9+ for conditions and asset-or-time schedules).
    from airflow.datasets import Dataset as Asset
    from airflow.datasets import DatasetAll as AssetAll
    from airflow.models import DAG, BaseOperator
    from airflow.models.baseoperatorlink import BaseOperatorLink
    from airflow.models.param import Param
    from airflow.models.skipmixin import SkipMixin
    from airflow.models.xcom import XCom
    from airflow.timetables.datasets import DatasetOrTimeSchedule
    from airflow.utils.dag_parsing_context import get_parsing_context
    from airflow.utils.task_group import MappedTaskGroup

# The same module in Airflow 2 and 3.
from airflow.timetables.trigger import CronTriggerTimetable

try:
    KUBERNETES_PROVIDER_VERSION = version("apache-airflow-providers-cncf-kubernetes")
except PackageNotFoundError:  # local compute does not need the provider
    KUBERNETES_PROVIDER_VERSION = None

__all__ = [
    "AIRFLOW_VERSION",
    "AIRFLOW_V_3_0_PLUS",
    "DAG",
    "KUBERNETES_PROVIDER_VERSION",
    "Asset",
    "AssetAll",
    "BaseOperator",
    "BaseOperatorLink",
    "CronTriggerTimetable",
    "MappedTaskGroup",
    "Param",
    "SkipMixin",
    "XCom",
    "airflow_config_option",
    "asset_schedule",
    "dag_bag_class",
    "external_task_sensor_class",
    "extra_link_url",
    "get_parsing_context",
    "loaded_plugin_names",
    "object_storage_path",
    "run_dag",
    "run_state",
    "s3_key_sensor_class",
    "serialize_dag",
    "stored_xcom",
    "task_group",
    "triggering_asset_extras",
]


def task_group(**kwargs: Any) -> Any:
    """Airflow's ``@task_group``, imported when a foreach needs one: its module imports the
    standard provider's Python operators (15 ms and 1 MB in every parse of DAGs without one)."""
    if AIRFLOW_V_3_0_PLUS:
        from airflow.sdk import task_group as decorator
    else:  # pragma: no cover - exercised by the Airflow 2 tox environments
        from airflow.decorators import task_group as decorator
    return decorator(**kwargs)


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


def airflow_config_option(section: str, key: str) -> str | None:
    """An option from Airflow's configuration (``airflow.cfg``, ``AIRFLOW__SECTION__KEY``, or a
    provider's declared default); ``None`` when unset or empty."""
    from airflow.configuration import conf

    value = conf.get(section, key, fallback=None)
    return value or None


def external_task_sensor_class() -> type:
    """ExternalTaskSensor moved to the standard provider with Airflow 3."""
    try:
        from airflow.providers.standard.sensors.external_task import ExternalTaskSensor
    except ImportError:  # Airflow 2 without the standard provider
        from airflow.sensors.external_task import ExternalTaskSensor
    return ExternalTaskSensor


def s3_key_sensor_class() -> type:
    """S3KeySensor comes with the Amazon provider, which Airflow does not install by default."""
    try:
        from airflow.providers.amazon.aws.sensors.s3 import S3KeySensor
    except ImportError as exc:
        raise ImportError(
            "@airflow_s3_key_sensor needs the Amazon provider: "
            "pip install apache-airflow-providers-amazon"
        ) from exc
    return S3KeySensor


def serialize_dag(dag: DAG) -> dict:
    """Airflow's serialized form of a DAG: what Airflow 3 compares to decide on a new version."""
    from airflow.serialization import serialized_objects

    # Airflow 3.3 renamed SerializedDAG to DagSerialization.
    serializer = getattr(serialized_objects, "DagSerialization", None) or getattr(
        serialized_objects, "SerializedDAG"
    )
    return serializer.to_dict(dag)


def object_storage_path(url: str, conn_id: str) -> Any:
    """Airflow's ObjectStoragePath for ``url`` with an Airflow connection: in the Task SDK on
    Airflow 3, in ``airflow.io`` on Airflow 2.8+."""
    if AIRFLOW_V_3_0_PLUS:
        from airflow.sdk import ObjectStoragePath
    else:  # pragma: no cover - exercised by the Airflow 2 tox environments
        from airflow.io.path import ObjectStoragePath
    return ObjectStoragePath(url, conn_id=conn_id)


def asset_schedule(uris: list[str], timetable: Any = None) -> Any:
    """A DAG schedule on Assets (Datasets on Airflow 2): a run once *all* of them have new
    events; with a timetable, also at its times (Airflow's asset-or-time schedule)."""
    condition = AssetAll(*(Asset(uri) for uri in uris))
    if timetable is None:
        return condition
    if AIRFLOW_V_3_0_PLUS:
        return AssetOrTimeSchedule(timetable=timetable, assets=condition)
    return DatasetOrTimeSchedule(timetable=timetable, datasets=condition)


def triggering_asset_extras(context: Any) -> dict[str, list[dict[str, Any]]]:
    """The ``extra`` of each asset event that triggered this run, by asset URI, oldest first;
    empty for a run that no asset event triggered. Airflow 3 names them
    ``triggering_asset_events`` (keyed by Asset), Airflow 2 ``triggering_dataset_events``
    (keyed by URI)."""
    if AIRFLOW_V_3_0_PLUS:
        events = context.get("triggering_asset_events") or {}
        by_uri = [(getattr(asset, "uri", None), found) for asset, found in events.items()]
    else:
        events = context.get("triggering_dataset_events") or {}
        by_uri = list(events.items())
    extras: dict[str, list[dict[str, Any]]] = {}
    for uri, found in by_uri:
        if uri is None:  # an asset alias: its events are listed under their assets too
            continue
        ordered = sorted(found, key=lambda event: event.timestamp)
        extras[uri] = [dict(event.extra or {}) for event in ordered]
    return extras
