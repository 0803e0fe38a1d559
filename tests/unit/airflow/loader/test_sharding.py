"""Sharding: a stable split of DAG ids between loader files, whole and without overlap."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
from manifests import FOREACH

from metaflow_airflow import ManifestStore
from metaflow_airflow.airflow.loader.parse import load_dags
from metaflow_airflow.airflow.loader.sharding import check_shard, shard_of
from metaflow_airflow.settings import Settings


def test_the_shard_of_a_dag_id_never_changes() -> None:
    """Fixed values: another process, machine or Python must agree (hash() would not)."""
    assert [shard_of(d, 4) for d in ("ForeachFlow", "a", "team.branch.Flow")] == [1, 2, 3]
    assert shard_of("anything", 1) == 0


def test_shards_are_even_enough() -> None:
    counts = Counter(shard_of(f"flow_{i:04d}", 8) for i in range(8000))
    assert set(counts) == set(range(8))
    assert max(counts.values()) < 1.1 * 1000


@pytest.mark.parametrize(("shard", "shards"), [(0, 0), (2, 2), (-1, 3), (0, 1.5), (True, 2)])
def test_impossible_shards_are_refused(shard: int, shards: int) -> None:
    with pytest.raises(ValueError):
        check_shard(shard, shards)


def test_loader_files_split_the_dags_between_them(tmp_path: Path) -> None:
    store = ManifestStore(f"file://{tmp_path / 'store'}")
    dag_ids = [f"flow_{i}" for i in range(12)]
    for dag_id in dag_ids:
        store.write(FOREACH.model_copy(update={"dag_id": dag_id}))
    settings = Settings(store=store.url, cache_dir=tmp_path / "cache")

    parts = [set(load_dags(settings=settings, shard=i, shards=3)) for i in range(3)]

    assert set().union(*parts) == set(dag_ids)
    assert sum(len(p) for p in parts) == len(dag_ids)
    for i, part in enumerate(parts):
        assert all(shard_of(d, 3) == i for d in part)
