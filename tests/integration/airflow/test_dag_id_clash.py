"""A hand-written DAG file that defines a published flow's DAG id: Airflow keeps one of the two
without a word, so the loader warns in the parse log, ``list --airflow-db`` reports which file
a running Airflow has each DAG from, and the ``dag_id_prefix`` setting keeps both apart."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from helpers import AIRFLOW_HOME, REPO
from store_helpers import make_manifest

from metaflow_airflow import ManifestStore
from metaflow_airflow.airflow.loader.parse import load_dags
from metaflow_airflow.cli import cli
from metaflow_airflow.settings import Settings

pytestmark = pytest.mark.timeout(300)

HAND_WRITTEN = """
from datetime import datetime

from airflow import DAG

with DAG({dag_id!r}, start_date=datetime(2024, 1, 1), schedule=None):
    pass
"""


@pytest.fixture
def hand_written_dag() -> Iterator[Path]:
    """A DAG file beside the loader in the session's dags folder that defines ``Taken``."""
    path = AIRFLOW_HOME / "dags" / "hand_written.py"
    path.write_text(HAND_WRITTEN.format(dag_id="Taken"))
    yield path
    path.unlink()


def published(tmp_path: Path, *dag_ids: str) -> ManifestStore:
    store = ManifestStore(f"file://{tmp_path / 'store'}")
    for dag_id in dag_ids:
        store.write(make_manifest(dag_id))
    return store


def test_the_loader_warns_about_a_dag_file_that_names_a_published_dag_id(
    dagbag, hand_written_dag, tmp_path, monkeypatch, warnings_logged
):
    monkeypatch.setenv("METAFLOW_AIRFLOW_CACHE_DIR", str(tmp_path / "cache"))
    dagbag(published(tmp_path, "Taken", "Free").url)  # (one DagBag sees both files; the
    # DAG processor parses each file in a process of its own and does not)
    clashes = [r.getMessage() for r in warnings_logged if "also appears in" in r.getMessage()]
    expected = (
        f"metaflow-airflow: DAG id Taken of a published flow also appears in {hand_written_dag}: "
        "if that file defines a DAG with this id, Airflow keeps only one of the two, from "
        "whichever file it parsed last, and says nothing. Rename one, or set "
        "METAFLOW_AIRFLOW_DAG_ID_PREFIX (e.g. 'mf.') to put a prefix before every published "
        "DAG id."
    )
    assert clashes == [expected]


def test_a_prefix_keeps_the_published_dag_apart(
    dagbag, hand_written_dag, tmp_path, monkeypatch, warnings_logged
):
    monkeypatch.setenv("METAFLOW_AIRFLOW_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("METAFLOW_AIRFLOW_DAG_ID_PREFIX", "mf.")
    bag = dagbag(published(tmp_path, "Taken").url)
    assert bag.import_errors == {}
    assert sorted(bag.dag_ids) == ["Taken", "mf.Taken"]
    assert bag.get_dag("Taken").fileloc == str(hand_written_dag)
    assert bag.get_dag("mf.Taken").fileloc.endswith("dags_loader.py")
    assert not [r for r in warnings_logged if "also appears in" in r.getMessage()]


def test_a_task_parse_finds_its_dag_by_the_prefixed_id(tmp_path, monkeypatch):
    store = published(tmp_path, "a", "b")
    settings = Settings(store=store.url, cache_dir=tmp_path / "cache", dag_id_prefix="mf.")
    assert sorted(load_dags(settings=settings)) == ["mf.a", "mf.b"]
    monkeypatch.setenv("_AIRFLOW_PARSING_CONTEXT_DAG_ID", "mf.b")
    assert list(load_dags(settings=settings)) == ["mf.b"]
    monkeypatch.setenv("_AIRFLOW_PARSING_CONTEXT_DAG_ID", "b")  # not a DAG of this loader
    assert load_dags(settings=settings) == {}


@pytest.mark.once
def test_list_reports_the_file_a_running_airflow_has_each_dag_from(airflow_db, tmp_path):
    """Airflow's own ``dags reserialize`` fills a copy of the session's metadata database
    from a dags folder with the loader (whose store has ``Ours``) and a hand-written DAG file
    that defines ``Taken``; ``list`` reads that database."""
    dags = tmp_path / "dags"
    dags.mkdir()
    shutil.copy(REPO / "dags_loader.py", dags)
    (dags / "hand_written.py").write_text(HAND_WRITTEN.format(dag_id="Taken"))
    database = tmp_path / "airflow.db"
    shutil.copy(AIRFLOW_HOME / "airflow.db", database)
    db_url = f"sqlite:///{database}"
    env = {
        **os.environ,
        "AIRFLOW__CORE__DAGS_FOLDER": str(dags),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": db_url,
        "METAFLOW_AIRFLOW_STORE": published(tmp_path / "loader", "Ours").url,
        "METAFLOW_AIRFLOW_CACHE_DIR": str(tmp_path / "cache"),
    }
    airflow = Path(sys.executable).parent / "airflow"
    subprocess.run([str(airflow), "dags", "reserialize"], env=env, check=True, capture_output=True)

    store = published(tmp_path / "listed", "Ours", "Taken", "NotInAirflow")
    listed = CliRunner().invoke(cli, ["list", "--store", store.url, "--airflow-db", db_url])
    assert listed.exit_code == 0, listed.output
    warning = (
        f"warning: Airflow has DAG Taken from {dags / 'hand_written.py'}, not from the "
        "metaflow-airflow loader: another DAG file defines the same dag_id, and the published "
        "flow does not run; rename one, or set METAFLOW_AIRFLOW_DAG_ID_PREFIX for the loader"
    )
    assert listed.stderr.splitlines() == [warning]
    rows = json.loads(
        CliRunner()
        .invoke(cli, ["list", "--store", store.url, "--airflow-db", db_url, "--json"])
        .stdout
    )
    assert {r["dag_id"]: (r["airflow_file"], r["airflow_clash"]) for r in rows} == {
        "NotInAirflow": (None, False),
        "Ours": (str(dags / "dags_loader.py"), False),
        "Taken": (str(dags / "hand_written.py"), True),
    }


def test_list_says_when_the_airflow_database_cannot_be_read(tmp_path):
    store = published(tmp_path, "Ours")
    missing = f"sqlite:///{tmp_path / 'no' / 'such.db'}"
    listed = CliRunner().invoke(cli, ["list", "--store", store.url, "--airflow-db", missing])
    assert str(listed.exception) == (
        f"cannot read Airflow's metadata database {missing}: (sqlite3.OperationalError) unable "
        "to open database file; give --airflow-db the sql_alchemy_conn of Airflow's [database] "
        "configuration"
    )
