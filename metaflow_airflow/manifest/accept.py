"""Stored bytes → an accepted manifest: the one check that the loader, its cache, the store's
reads, ``validate`` and ``list`` share, so that ``validate`` says exactly what the loader will.

In order: the bytes could be read; they are no larger than ``MAX_MANIFEST_BYTES``; their
signature verifies (when signatures are checked); they are a manifest of a schema version this
package reads; they pass the models' checks (JSON values nested at most ``MAX_JSON_DEPTH``
deep, among others); the manifest declares the DAG id it is stored under. Whatever the bytes
hold, the outcome is a manifest or a ManifestError: never another exception (a JSON document
nested thousands of levels deep makes Python's own parser raise RecursionError). Every refusal is a
:class:`~metaflow_airflow.errors.ManifestError` naming the manifest's URL and the field.
"""

from __future__ import annotations

import json
from typing import TypeVar

from pydantic import ValidationError

from metaflow_airflow.errors import ManifestError
from metaflow_airflow.manifest.base import MAX_JSON_DEPTH
from metaflow_airflow.manifest.models import SCHEMA_VERSION, FlowManifest
from metaflow_airflow.manifest.signing import SignatureCheck, verify

Manifest = TypeVar("Manifest", bound=FlowManifest)
# A fifty-step flow's manifest is about 300 KB (docs/performance.md): far below this.
MAX_MANIFEST_BYTES = 16 * 1024 * 1024

__all__ = ["MAX_JSON_DEPTH", "MAX_MANIFEST_BYTES", "accept_manifest", "unreadable"]


def accept_manifest(
    data: bytes | str | Exception,
    url: str,
    dag_id: str | None = None,
    *,
    signature: bytes | Exception | None = None,
    signatures: SignatureCheck | None = None,
    model: type[Manifest] = FlowManifest,  # type: ignore[assignment]
) -> Manifest:
    """The manifest in ``data`` (or the error its read raised), checked as described above.

    ``signature`` is the sidecar's bytes (``None`` or FileNotFoundError: there is none, any
    other error: its read failed); with ``signatures`` it must verify. ``model`` is a
    FlowManifest class to validate as."""
    if isinstance(data, Exception):
        raise ManifestError(url, f"cannot be read: {data}")
    if isinstance(data, str):  # a signature covers the stored bytes
        data = data.encode("utf-8")
    if len(data) > MAX_MANIFEST_BYTES:
        raise ManifestError(
            url, f"{len(data)} bytes: a manifest may have at most {MAX_MANIFEST_BYTES} bytes"
        )
    if signatures is not None:
        if signatures.key is None:
            raise ManifestError(url, signatures.problem)
        if unreadable(signature):
            raise ManifestError(url, f"its signature cannot be read: {signature}")
        sidecar = signature if isinstance(signature, bytes) else None
        activated = verify(data, sidecar, signatures.key, url=url)
        manifest = _parse(data, url, dag_id, model)
        manifest._activated = activated
        return manifest
    return _parse(data, url, dag_id, model)


def unreadable(blob: bytes | str | Exception | None) -> bool:
    """A read that failed for another reason than the object not existing (worth retrying)."""
    return isinstance(blob, Exception) and not isinstance(blob, FileNotFoundError)


def _parse(data: bytes, url: str, dag_id: str | None, model: type[Manifest]) -> Manifest:
    """Validate manifest JSON as ``model``; the error names ``url`` and the first failing
    field. With ``dag_id`` (the name it is stored under), the manifest must declare that id."""
    try:
        manifest = model.model_validate_json(data)
    except (RecursionError, MemoryError) as exc:
        raise ManifestError(url, f"cannot be parsed ({type(exc).__name__})") from exc
    except ValidationError as exc:
        newer = _future_schema_version(data)
        if newer is not None:
            raise ManifestError(
                url,
                f"field schema_version: {newer} is newer than this metaflow-airflow reads "
                f"({SCHEMA_VERSION}); upgrade metaflow-airflow where Airflow runs",
            ) from exc
        first = exc.errors()[0]
        field = ".".join(str(part) for part in first["loc"]) or "(document)"
        more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
        raise ManifestError(url, f"field {field}: {first['msg']}{more}") from exc
    if dag_id is not None and manifest.dag_id != dag_id:
        raise ManifestError(
            url, f"field dag_id: {manifest.dag_id!r} does not match its file name {dag_id!r}"
        )
    return manifest


def _future_schema_version(data: bytes | str) -> int | None:
    try:
        document = json.loads(data)
    except (ValueError, RecursionError):  # not JSON, or nested too deep for Python's parser
        return None
    version = document.get("schema_version") if isinstance(document, dict) else None
    if isinstance(version, int) and not isinstance(version, bool) and version > SCHEMA_VERSION:
        return version
    return None
