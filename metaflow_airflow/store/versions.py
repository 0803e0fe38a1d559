"""Published versions of a DAG's manifest: their names, and which one a rollback goes to.

A version's name is its publish time and the start of its content hash
(``20261122T101500.123456Z-0123456789ab``): names sort in publish order, and the current
manifest (a full copy of one version) is matched to its version by hash.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import datetime, timezone

from metaflow_airflow.errors import StoreError
from metaflow_airflow.manifest.signing import ACTIVATION_FORMAT

_VERSION_TIME = ACTIVATION_FORMAT
_VERSION_NAME = re.compile(r"^(\d{8}T\d{6}\.\d{6}Z)-([0-9a-f]{12})$")


@dataclass(frozen=True)
class Version:
    """One published version of a DAG's manifest; ``name`` sorts in publish order."""

    name: str
    created_at: datetime
    content_hash: str
    current: bool


def content_hash(data: bytes) -> str:
    """The SHA-256 of a manifest's stored bytes (what version names and the cache key on)."""
    return hashlib.sha256(data).hexdigest()


def new_version_name(data: bytes, now: datetime) -> str:
    """The name of a version published at ``now`` (UTC) with bytes ``data``: its time is the
    version's signed activation."""
    return f"{now.strftime(_VERSION_TIME)}-{_short_hash(data)}"


def is_version_name(stem: str) -> bool:
    return _VERSION_NAME.match(stem) is not None


def versions(names: list[str], current: bytes | None) -> list[Version]:
    """The versions named ``names`` (sorted), marking the one ``current`` is a copy of."""
    current_name = version_with_hash(names, current)
    found = []
    for name in names:
        stamp, short = _VERSION_NAME.match(name).groups()  # type: ignore[union-attr]
        created = datetime.strptime(stamp, _VERSION_TIME).replace(tzinfo=timezone.utc)
        found.append(Version(name, created, short, current=name == current_name))
    return found


def version_with_hash(names: list[str], data: bytes | None) -> str | None:
    """The newest version name whose content hash is that of ``data`` (``None``: none is)."""
    if data is None:
        return None
    short_hash = _short_hash(data)
    matching = [n for n in names if n.endswith(f"-{short_hash}")]
    return matching[-1] if matching else None


def rollback_target(dag_id: str, found: list[Version], to: str | None) -> Version:
    """``to`` (a version name or its hash), by default the version before the current one
    (the newest one after a delete)."""
    if to is not None:
        matching = [v for v in found if to in (v.name, v.content_hash)]
        if not matching:
            raise StoreError(f"{dag_id} has no version {to!r} (see `metaflow-airflow history`)")
        return matching[-1]
    current = [i for i, v in enumerate(found) if v.current]
    if not current:
        if not found:
            raise StoreError(f"{dag_id} has no stored versions to roll back to")
        return found[-1]
    if current[0] == 0:
        raise StoreError(f"{dag_id}: the current version is the oldest; nothing to roll back to")
    return found[current[0] - 1]


def _short_hash(data: bytes) -> str:
    return content_hash(data)[:12]
