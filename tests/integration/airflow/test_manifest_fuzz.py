"""Fuzzing the isolation promise: valid manifests mutated at random (any field replaced by any
JSON value, keys dropped, graph edges rewired, crons and names from arbitrary text, deep and
wide values) go through the real loader file under Airflow's DagBag, and every DAG it keeps is
serialized as Airflow's DAG processor serializes it. In every example the loader file has no
import error and the good DAG beside the mutant loads."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import pytest
from airflow_harness import serialize_dag
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from manifests import FOREACH, FOREACH_STEPS, make_manifest

from metaflow_airflow import ManifestStore

pytestmark = [pytest.mark.usefixtures("airflow_db"), pytest.mark.timeout(900)]

SEED = json.loads(FOREACH.model_copy(update={"dag_id": "mutant"}).to_json())
SEED["schedule"] = {"cron": "0 6 * * *", "timezone": "Europe/Paris"}

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(), children,
                                                                     max_size=4),
    max_leaves=20,
)


def paths(document: Any, prefix: tuple = ()) -> list[tuple]:
    """Every place in the document a mutation can hit."""
    found = [prefix] if prefix else []
    if isinstance(document, dict):
        for key, value in document.items():
            found += paths(value, (*prefix, key))
    elif isinstance(document, list):
        for index, value in enumerate(document):
            found += paths(value, (*prefix, index))
    return found


def put(document: Any, path: tuple, value: Any, *, drop: bool = False) -> None:
    *parents, last = path
    for key in parents:
        document = document[key]
    if drop and isinstance(document, dict):
        del document[last]
    else:
        document[last] = value


step_names = st.sampled_from([s.name for s in FOREACH_STEPS] + ["ghost", "", "start"])


@st.composite
def mutants(draw: st.DrawFn) -> bytes:
    document = json.loads(json.dumps(SEED))
    for _ in range(draw(st.integers(1, 3))):
        kind = draw(st.sampled_from(["replace", "drop", "edges", "cron", "text", "deep"]))
        if kind in ("replace", "drop"):
            path = draw(st.sampled_from(paths(document)))
            put(document, path, draw(json_values), drop=kind == "drop")
        elif kind == "edges":
            step = draw(st.sampled_from(document["steps"]))
            if isinstance(step, dict):
                step[draw(st.sampled_from(["parents", "next"]))] = draw(
                    st.lists(step_names, max_size=3)
                )
        elif kind == "cron":
            document["schedule"] = {"cron": draw(st.text(max_size=30)),
                                    "timezone": draw(st.none() | st.text(max_size=20))}
        elif kind == "text":
            key = draw(st.sampled_from(["description", "flow_name", "published_by", "dag_id"]))
            document[key] = draw(st.text(max_size=300))
        else:
            depth = draw(st.integers(20, 3000))
            document["parameters"] = [
                {"name": "p", "type": "json", "default": "__DEEP__"}
            ]
            text = json.dumps(document).replace('"__DEEP__"', "[" * depth + "]" * depth)
            return text.encode()
    return json.dumps(document).encode()


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(mutant=mutants())
def test_no_mutant_manifest_breaks_the_loader_file(mutant: bytes, tmp_path: Path, dagbag):
    store = ManifestStore(f"file://{tmp_path / uuid.uuid4().hex}")
    store.write(make_manifest(FOREACH_STEPS).model_copy(update={"dag_id": "good"}))
    store.fs.pipe_file(f"{store.root}/manifests/mutant.json", mutant)

    bag = dagbag(store.url)

    assert bag.import_errors == {}
    assert "good" in bag.dag_ids
    for dag_id in bag.dag_ids:
        serialize_dag(bag.get_dag(dag_id))
