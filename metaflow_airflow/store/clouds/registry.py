"""Which :class:`~.base.Cloud` serves a URL, a file system or a Metaflow datastore."""

from __future__ import annotations

from typing import Any

from metaflow_airflow.store.clouds.azure import AzureCloud
from metaflow_airflow.store.clouds.base import Cloud
from metaflow_airflow.store.clouds.gcs import GcsCloud
from metaflow_airflow.store.clouds.local import LocalCloud
from metaflow_airflow.store.clouds.s3 import S3Cloud

CLOUDS: tuple[Cloud, ...] = (LocalCloud(), S3Cloud(), AzureCloud(), GcsCloud())
OTHER = Cloud()


def cloud_for_protocol(protocol: str) -> Cloud:
    """The cloud of an fsspec protocol (``s3``, ``az``...); a plain one for any other."""
    return next((cloud for cloud in CLOUDS if protocol in cloud.protocols), OTHER)


def cloud_for_url(url: str) -> Cloud:
    """The cloud of a store URL (``file://`` when it has no scheme)."""
    return cloud_for_protocol(url.split("://", 1)[0] if "://" in url else "file")


def cloud_of(fs: Any) -> Cloud:
    """The cloud of an fsspec file system object."""
    protocols = fs.protocol if isinstance(fs.protocol, (tuple, list)) else (fs.protocol,)
    return next((c for c in CLOUDS if c.protocols & set(protocols)), OTHER)


def cloud_for_datastore(name: str) -> Cloud:
    """The cloud of a Metaflow datastore (``local``, ``s3``, ``azure``, ``gs``)."""
    return next((cloud for cloud in CLOUDS if cloud.name == name), OTHER)
