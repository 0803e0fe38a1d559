"""fsspec storage options from an Airflow connection, built the way Airflow's ObjectStoragePath
builds them.

Why: on Airflow, credentials belong in connections (Amazon MWAA's ``aws_default`` is its
execution role), not in ``METAFLOW_AIRFLOW_STORAGE_OPTIONS``. The provider that registers a URL
scheme (Amazon for ``s3://``, Microsoft Azure for ``abfs://``, Google for ``gs://``) turns the
connection into a file system; the store only takes that file system's options.
"""

from __future__ import annotations

from typing import Any

from airflow.exceptions import AirflowNotFoundException

from metaflow_airflow.airflow.compat import object_storage_path
from metaflow_airflow.errors import StoreError
from metaflow_airflow.store.clouds.registry import cloud_for_protocol


def storage_options_from_connection(conn_id: str, protocol: str) -> dict[str, Any]:
    """The storage options (credentials, endpoint, session...) that Airflow connection
    ``conn_id`` gives a file system for ``protocol`` (``s3``, ``az``, ``gs``...).

    The values may be live objects (an S3 session), so use them in this process only. Raises
    :class:`StoreError` when no installed provider handles ``protocol`` or the connection is
    not defined (the Amazon provider instead falls back to boto3's default credentials)."""
    cloud = cloud_for_protocol(protocol)
    scheme = cloud.connection_scheme or protocol
    try:
        fs = object_storage_path(f"{scheme}://", conn_id).fs
    except ValueError as exc:
        if not str(exc).startswith("No filesystem registered"):  # e.g. an incompatible upath
            raise StoreError(
                f"Airflow connection {conn_id!r} cannot open {protocol}:// stores: {exc}"
            ) from exc
        provider = cloud.airflow_provider or f"an Airflow provider for {scheme}://"
        raise StoreError(
            f"Airflow connection {conn_id!r} cannot open {protocol}:// stores: no installed "
            f"provider registers {scheme}:// (install {provider})"
        ) from exc
    except AirflowNotFoundException as exc:
        raise StoreError(f"Airflow connection {conn_id!r} is not defined: {exc}") from exc
    return dict(fs.storage_options)
