"""Manifests parsed for the loader share pydantic's per-model sets of given fields (a third of a
parsed manifest's memory), and behave exactly as separately parsed ones."""

from __future__ import annotations

import json

from manifests import FOREACH_STEPS, make_manifest

from metaflow_airflow.cache import HashedManifest
from metaflow_airflow.manifest import FlowManifest


def _parsed(dag_id: str) -> tuple[bytes, HashedManifest]:
    data = make_manifest(FOREACH_STEPS, kubernetes=True).model_copy(update={"dag_id": dag_id})
    blob = data.to_json().encode()
    return blob, HashedManifest.parse(blob, f"file:///store/{dag_id}.json", dag_id, "0" * 64)


def test_models_given_the_same_fields_share_one_set():
    _, first = _parsed("first")
    _, second = _parsed("second")
    assert first.model_fields_set is second.model_fields_set
    assert first.steps[0].pod.model_fields_set is second.steps[1].pod.model_fields_set
    assert first.steps[0].model_fields_set is second.steps[0].model_fields_set


def test_shared_sets_change_nothing_a_caller_sees():
    blob, shared = _parsed("shared")
    alone = FlowManifest.model_validate_json(blob)
    assert shared.model_dump() == alone.model_dump()
    assert shared.model_fields_set == alone.model_fields_set
    for ours, theirs in zip(shared.steps, alone.steps):
        assert ours.model_fields_set == theirs.model_fields_set
        assert ours.pod.model_fields_set == theirs.pod.model_fields_set


def test_a_copy_with_updates_leaves_the_shared_set_alone():
    document = json.loads(_parsed("first")[0])
    for step in document["steps"]:
        del step["doc"]  # a field left to its default: not in the steps' sets
    blob = json.dumps(document).encode()
    first = HashedManifest.parse(blob, "file:///store/first.json", "first", "0" * 64)
    shared = first.steps[0].model_fields_set
    assert "doc" not in shared and shared is first.steps[1].model_fields_set

    changed = first.steps[0].model_copy(update={"doc": "new"})

    assert "doc" in changed.model_fields_set
    assert "doc" not in shared and "doc" not in first.steps[1].model_fields_set
