"""Splitting one store's manifests between several loader files.

Airflow parses each file in its own process under an import timeout (30 s by default); with
thousands of flows, ``load_dags(globals(), shard=i, shards=n)`` in ``n`` files keeps each parse
short and lets Airflow's parsing processes work on them in parallel.
"""

from __future__ import annotations

import hashlib


def shard_of(dag_id: str, shards: int) -> int:
    """The shard that owns ``dag_id``: the same in every process, machine and Python version
    (hashlib, not the per-process salted ``hash()``)."""
    digest = hashlib.sha256(dag_id.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") % shards


def check_shard(shard: int, shards: int) -> None:
    """Refuse a shard that cannot exist, rather than silently loading nothing."""
    if isinstance(shards, bool) or not isinstance(shards, int) or shards < 1:
        raise ValueError(f"shards must be a positive integer, not {shards!r}")
    if isinstance(shard, bool) or not isinstance(shard, int) or not 0 <= shard < shards:
        raise ValueError(f"shard must be an integer from 0 to {shards - 1}, not {shard!r}")
