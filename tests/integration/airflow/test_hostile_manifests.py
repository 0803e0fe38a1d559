"""Nothing one manifest holds can take down another DAG: Airflow's DagBag parses the real loader
file over a store where one manifest is hostile, and finds no import error, every good DAG, and
the hostile one as its own placeholder; ``list`` and ``validate`` report it in one line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from manifests import FOREACH_STEPS, make_manifest

from metaflow_airflow import ManifestStore
from metaflow_airflow.airflow.dag.placeholder import ERROR_TAG
from metaflow_airflow.airflow.loader.parse import load_dags
from metaflow_airflow.cli import cli
from metaflow_airflow.manifest.base import MAX_JSON_DEPTH
from metaflow_airflow.settings import Settings

pytestmark = pytest.mark.usefixtures("airflow_db")


def manifest_document(dag_id: str) -> dict:
    return json.loads(make_manifest(FOREACH_STEPS).model_copy(update={"dag_id": dag_id}).to_json())


def nested(depth: int) -> str:
    return "[" * depth + "]" * depth


def with_raw_default(dag_id: str, default_json: str) -> bytes:
    """A manifest whose first Parameter's default is the JSON text ``default_json``."""
    document = manifest_document(dag_id)
    document["parameters"] = [{"name": "p", "type": "json", "default": "__DEFAULT__"}]
    return json.dumps(document).replace('"__DEFAULT__"', default_json).encode()


def with_changes(dag_id: str, change) -> bytes:
    document = manifest_document(dag_id)
    change(document)
    return json.dumps(document).encode()


def steps_by_name(document: dict) -> dict:
    return {step["name"]: step for step in document["steps"]}


HOSTILE = {
    # Python's JSON parser raises RecursionError; pydantic's refuses it.
    "deep_5000": with_raw_default("deep_5000", nested(5000)),
    # Parses, but Airflow would walk it recursively (Params, serialization).
    "deep_900": with_raw_default("deep_900", nested(900)),
    "just_too_deep": with_raw_default("just_too_deep", nested(MAX_JSON_DEPTH + 1)),
    # Airflow refuses these DAGs in its DAG processor, after the loader file ran.
    "cycle": with_changes("cycle", lambda d: steps_by_name(d)["a"].update(parents=["start", "b"])),
    "self_parent": with_changes("self_parent", lambda d: steps_by_name(d)["b"].update(
        parents=["a", "b"])),
    "bad_cron": with_changes("bad_cron", lambda d: d.update(schedule={"cron": "0 25 * * *"})),
    "bad_zone": with_changes("bad_zone", lambda d: d.update(
        schedule={"cron": "0 0 * * *", "timezone": "Not/AZone"})),
    # Passes the manifest's own checks; Airflow's timetable refuses it.
    "nth_weekday": with_changes("nth_weekday", lambda d: d.update(
        schedule={"cron": "0 0 * * 1#9"})),
    # Passes every check; building its DAG fails (a timedelta overflows).
    "overflow": with_changes("overflow", lambda d: steps_by_name(d)["end"].update(
        retry_delay_seconds=10**20)),
}


def store_with(tmp_path: Path, name: str) -> ManifestStore:
    store = ManifestStore(f"file://{tmp_path / 'store'}")
    store.write(make_manifest(FOREACH_STEPS).model_copy(update={"dag_id": "good"}))
    store.fs.pipe_file(f"{store.root}/manifests/{name}.json", HOSTILE[name])
    return store


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_a_hostile_manifest_is_only_its_own_dags_problem(name: str, tmp_path: Path, dagbag):
    store = store_with(tmp_path, name)
    bag = dagbag(store.url)
    assert bag.import_errors == {}
    assert sorted(bag.dag_ids) == sorted(["good", name])
    assert ERROR_TAG in bag.get_dag(name).tags and ERROR_TAG not in bag.get_dag("good").tags


# What only building the DAG shows; `validate` runs without Airflow.
BUILD_ONLY = {"nth_weekday", "overflow"}


@pytest.mark.parametrize("name", sorted(set(HOSTILE) - BUILD_ONLY))
def test_list_and_validate_report_it_in_one_line(name: str, tmp_path: Path):
    store = store_with(tmp_path, name)
    listed = CliRunner().invoke(cli, ["list", "--store", store.url])
    assert listed.exit_code == 0, listed.output
    assert listed.output.startswith("good\t")
    validated = CliRunner().invoke(cli, ["validate", "--store", store.url])
    assert validated.exit_code == 1
    invalid = [line for line in validated.output.splitlines() if line.startswith("invalid")]
    assert len(invalid) == 1 and f"manifests/{name}.json" in invalid[0]
    assert "Traceback" not in validated.output


def test_a_json_value_at_the_depth_limit_is_accepted(tmp_path: Path):
    store = ManifestStore(f"file://{tmp_path / 'store'}")
    store.fs.makedirs(f"{store.root}/manifests", exist_ok=True)
    store.fs.pipe_file(
        f"{store.root}/manifests/deep_ok.json", with_raw_default("deep_ok", nested(MAX_JSON_DEPTH))
    )
    assert store.read("deep_ok").parameters[0].default is not None


# --- odd objects in a folder store -----------------------------------------------------------


def odd_objects(folder: Path) -> list[str]:
    """What a careless user or an attacker with a shell can leave under manifest names."""
    (folder / "loop.json").symlink_to("loop.json")
    (folder / "folder.json").mkdir()
    os.mkfifo(folder / "fifo.json")
    (folder / "zero.json").symlink_to("/dev/zero")
    return ["fifo", "folder", "loop", "zero"]


@pytest.mark.timeout(120)
def test_odd_objects_in_a_folder_store_are_their_own_errors(tmp_path: Path, warnings_logged):
    """Each is that manifest's error, never the store's: a cold cache loads the good DAG, a warm
    one still sees a new publish, and no read waits on a FIFO (the store timeout is longer than
    the test's, so a blocked read fails the test instead of being cut short)."""
    store = ManifestStore(f"file://{tmp_path / 'store'}")
    store.write(make_manifest(FOREACH_STEPS).model_copy(update={"dag_id": "good"}))
    odd = odd_objects(tmp_path / "store" / "manifests")
    settings = Settings(
        store=store.url, cache_dir=tmp_path / "cache", store_timeout_seconds=600
    )

    cold = load_dags(settings=settings)
    assert ERROR_TAG not in cold["good"].tags
    assert all(ERROR_TAG in cold[name].tags for name in odd)
    assert "not a regular file" in cold["fifo"].doc_md

    store.write(make_manifest(FOREACH_STEPS).model_copy(update={"dag_id": "newer"}))
    warm = load_dags(settings=settings)
    assert sorted(warm) == sorted(["good", "newer", *odd])
    assert not [r for r in warnings_logged if "unavailable" in r.getMessage()]


def test_show_names_an_odd_object_in_one_line(tmp_path: Path):
    store = ManifestStore(f"file://{tmp_path / 'store'}")
    store.write(make_manifest(FOREACH_STEPS).model_copy(update={"dag_id": "good"}))
    odd_objects(tmp_path / "store" / "manifests")
    command = str(Path(sys.executable).parent / "metaflow-airflow")
    shown = subprocess.run(
        [command, "show", "fifo", "--store", store.url],
        capture_output=True, text=True, timeout=120, check=False,
    )
    assert shown.returncode == 1
    assert shown.stderr.startswith("error: ") and len(shown.stderr.splitlines()) == 1
    assert "fifo.json: cannot be read" in shown.stderr and "not a regular file" in shown.stderr
