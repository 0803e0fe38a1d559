"""The one place that knows how Airflow 2 and 3 (and provider versions) differ.

Everything else imports Airflow's authoring objects from here. Each shim says why it exists, so it
can go when the oldest supported Airflow (2.10, what Amazon MWAA still runs) no longer needs it.
"""

from __future__ import annotations

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

    try:  # the Task SDK has them from Airflow 3.1 (the core ones are deprecated there); 3.0 in core
        from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException
    except ImportError:
        from airflow.exceptions import AirflowFailException, AirflowSkipException

    try:  # the Task SDK has it from Airflow 3.1; 3.0 in core
        from airflow.sdk import AssetOrTimeSchedule
    except ImportError:
        from airflow.timetables.assets import AssetOrTimeSchedule
else:  # pragma: no cover - exercised by the Airflow 2 tox environments
    # Assets were Datasets on Airflow 2 (2.9+ for conditions and asset-or-time schedules).
    from airflow.datasets import Dataset as Asset
    from airflow.datasets import DatasetAll as AssetAll
    from airflow.exceptions import AirflowFailException, AirflowSkipException
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

__all__ = [
    "AIRFLOW_VERSION",
    "AIRFLOW_V_3_0_PLUS",
    "DAG",
    "AirflowFailException",
    "AirflowSkipException",
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
    "bundle_version_answer",
    "check_as_the_dag_processor",
    "external_task_sensor_class",
    "get_parsing_context",
    "object_storage_path",
    "s3_key_sensor_class",
    "task_group",
    "timetable_summary",
    "triggering_asset_extras",
]


def task_group(**kwargs: Any) -> Any:
    """Airflow's ``@task_group``, imported when a foreach needs one: its module imports the
    standard provider's Python operators, which DAGs without one need not pay for in every parse."""
    if AIRFLOW_V_3_0_PLUS:
        from airflow.sdk import task_group as decorator
    else:  # pragma: no cover - exercised by the Airflow 2 tox environments
        from airflow.decorators import task_group as decorator
    return decorator(**kwargs)


def airflow_config_option(section: str, key: str) -> str | None:
    """An option from Airflow's configuration (``airflow.cfg``, ``AIRFLOW__SECTION__KEY``, or a
    provider's declared default); ``None`` when unset or empty."""
    from airflow.configuration import conf

    value = conf.get(section, key, fallback=None)
    return value or None


def bundle_version_answer(version: str) -> Any:
    """What a versioned DAG bundle's ``get_current_version`` returns: Airflow 3.3 takes a
    ``BundleVersion`` (a plain string is deprecated there); 3.0-3.2 take the string. Imported
    here, by the DAG processor only: no parse pays for it."""
    try:
        from airflow.dag_processing.bundles.base import BundleVersion
    except ImportError:  # pragma: no cover - exercised by the airflow30 tox environment
        return version
    return BundleVersion(version=version)


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


def mapped_xcoms(ti: Any, task_id: str, key: str, width: int) -> list[Any]:
    """What the ``width`` mapped tasks of ``task_id`` pushed under ``key``, those that pushed
    nothing (skipped) left out. Airflow 3 returns them in one request when no map index is
    given (asking index by index logs an error per missing one); Airflow 2 in one query for a
    range of indexes."""
    if AIRFLOW_V_3_0_PLUS:
        values = ti.xcom_pull(task_ids=task_id, key=key)
    else:
        values = ti.xcom_pull(task_ids=task_id, key=key, map_indexes=range(width))
    if values is None:
        return []
    if isinstance(values, (str, bytes, dict)):  # Airflow 3: exactly one found
        return [values]
    return [value for value in values if value is not None]


def check_as_the_dag_processor(dag: DAG) -> None:
    """Raise what Airflow's DAG processor would raise for ``dag`` before keeping it (its
    timetable, setup and teardown, cycles): there, the failure of one DAG becomes an import
    error of the whole loader file. Airflow 3.1 made the cycle test a DAG method; 2.x and 3.0
    have it as a function."""
    dag.validate()
    if hasattr(dag, "check_cycle"):
        dag.check_cycle()
    else:
        from airflow.utils.dag_cycle_tester import check_cycle

        check_cycle(dag)


def timetable_summary(timetable: Any) -> str:
    """A DAG's schedule in a few words ("none" without one): Airflow 2 summarizes "no
    schedule" as "None", Airflow 3 as ""."""
    summary = str(getattr(timetable, "summary", "") or "")
    return "none" if summary in ("", "None") else summary
