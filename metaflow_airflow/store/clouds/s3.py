"""Amazon S3 (``s3://``) through s3fs, and Metaflow's ``s3`` datastore (or any S3-compatible
endpoint). Pointer moves are conditional on the object's ETag (``IfMatch``).

Timestamps: botocore parses every ``LastModified`` of a listing with dateutil, which made a
listing of 1,000 manifests cost noticeable CPU in every parse (docs/performance.md), in a
thread that competes with building the DAGs. S3 sends ISO 8601 there, and HTTP dates in object
headers, both of which the standard library parses much faster; anything else goes to
botocore's own parser.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from typing import Any, ClassVar

from metaflow_airflow.store.clouds.base import Cloud, WriteConflict, causes, named

# What s3fs (botocore) reports when a conditional write loses.
_CONFLICT_CODES = {"PreconditionFailed", "ConditionalRequestConflict"}
# What S3 answers to keys it does not accept.
_REFUSED_KEY_CODES = {
    "InvalidAccessKeyId",
    "SignatureDoesNotMatch",
    "ExpiredToken",
    "InvalidToken",
    "AuthorizationHeaderMalformed",
}
NO_CREDENTIALS = (
    "no AWS credentials found; set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or AWS_PROFILE), "
    'or give them in --storage-options \'{"key": ..., "secret": ...}\''
)


class S3Cloud(Cloud):
    name: ClassVar[str] = "s3"
    protocols: ClassVar[frozenset[str]] = frozenset({"s3", "s3a"})
    connection_scheme: ClassVar[str | None] = "s3"
    airflow_provider: ClassVar[str | None] = "apache-airflow-providers-amazon"
    marker_keys: ClassVar[tuple[str, ...]] = ("ETag",)
    sysroot_variable: ClassVar[str | None] = "METAFLOW_DATASTORE_SYSROOT_S3"
    task_settings: ClassVar[Mapping[str, str]] = {
        "METAFLOW_DATATOOLS_S3ROOT": "DATATOOLS_S3ROOT",
        "METAFLOW_S3_ENDPOINT_URL": "S3_ENDPOINT_URL",
    }

    has_buckets: ClassVar[bool] = True

    def explain(self, error: BaseException, *, datastore: bool = False) -> str:
        for cause in causes(error):
            if named(cause, "NoCredentialsError", "PartialCredentialsError"):
                return NO_CREDENTIALS.split(", or give")[0] if datastore else NO_CREDENTIALS
            if named(
                cause, "EndpointConnectionError", "ConnectTimeoutError", "ConnectionClosedError"
            ):
                endpoint = getattr(cause, "kwargs", {}).get("endpoint_url", "the S3 endpoint")
                if datastore:
                    return (
                        f"cannot connect to {_origin(endpoint)}; check Metaflow's S3 endpoint "
                        "(METAFLOW_S3_ENDPOINT_URL) and the network"
                    )
                return (
                    f"cannot connect to {_origin(endpoint)}; check the endpoint URL "
                    '(--storage-options \'{"client_kwargs": {"endpoint_url": ...}}\' or '
                    "AWS_ENDPOINT_URL) and the network"
                )
            code = _error_code(cause)
            if code == "NoSuchBucket":
                return "the bucket does not exist; create it, or correct the store URL"
            if code in _REFUSED_KEY_CODES:
                return f"S3 refused the AWS credentials ({code}); check the key, secret and token"
            if code in {"AccessDenied", "AllAccessDisabled", "403"}:
                return (
                    "access denied; use credentials allowed to list, read and write the bucket "
                    "(s3:ListBucket, s3:GetObject, s3:PutObject, s3:DeleteObject)"
                )
        return super().explain(error, datastore=datastore)

    def prepare(self, fs: Any) -> None:
        """Parse the responses' timestamps the fast way; sets up the client, without a
        request."""
        fs.connect()
        factory = fs.session.get_component("response_parser_factory")
        factory.set_parser_defaults(timestamp_parser=parse_timestamp)

    def read_options(self, fs: Any) -> dict[str, Any]:
        """One GET per manifest: s3fs sends a HEAD first (to split big objects into ranged
        reads) unless told ``max_concurrency=1``, which s3fs knows from 2024.x; older ones, as
        Airflow 2.x's constraints pin, reject the keyword."""
        accepted = inspect.signature(type(fs)._cat_file).parameters
        return {"max_concurrency": 1} if "max_concurrency" in accepted else {}

    def replace_if_unchanged(self, fs: Any, path: str, data: bytes, tag: str) -> None:
        try:
            fs.pipe_file(path, data, IfMatch=tag)
        except Exception as exc:
            if any(_error_code(error) in _CONFLICT_CODES for error in (exc, exc.__cause__)):
                raise WriteConflict() from exc
            raise

    def probe_options(self, options: Mapping[str, Any]) -> dict[str, Any]:
        config = {"retries": {"max_attempts": 2}, "connect_timeout": 10}
        return {**options, "config_kwargs": {**config, **options.get("config_kwargs", {})}}

    def package_location(self, url: str, env: Mapping[str, str]) -> tuple[str, dict[str, Any]]:
        endpoint = env.get("METAFLOW_S3_ENDPOINT_URL")
        return url, {"client_kwargs": {"endpoint_url": endpoint}} if endpoint else {}


def _origin(url: str) -> str:
    """``scheme://host:port`` of a request URL: where it went, without its query."""
    scheme, _, rest = str(url).partition("://")
    return f"{scheme}://{rest.split('/', 1)[0]}" if rest else str(url)


def _error_code(error: BaseException | None) -> str | None:
    response = getattr(error, "response", None)
    return response.get("Error", {}).get("Code") if isinstance(response, dict) else None


def parse_timestamp(value: Any) -> datetime:
    """``2026-11-22T10:42:39.000Z`` and ``Sun, 22 Nov 2026 10:42:39 GMT`` with the standard
    library, anything else as botocore would."""
    if isinstance(value, str):
        try:
            if value.endswith("Z"):
                return datetime.fromisoformat(value[:-1] + "+00:00")
            if value.endswith(" GMT"):
                return parsedate_to_datetime(value).replace(tzinfo=timezone.utc)
        except (TypeError, ValueError):  # Python 3.10 raises TypeError for some bad dates
            pass
    from botocore.utils import parse_timestamp as botocore_parse_timestamp

    return botocore_parse_timestamp(value)
