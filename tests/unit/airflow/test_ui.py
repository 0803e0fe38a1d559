"""What the Airflow UI shows: the Metaflow UI link's URL, each DAG's doc_md, and that both are
the same on every parse (Airflow 3 makes a new DAG version whenever the serialized DAG changes)."""

from __future__ import annotations

import json

import pytest
from airflow_harness import serialize_dag
from manifests import ALL_PARAMETER_TYPES, FOREACH_STEPS, make_manifest

from metaflow_airflow.airflow.dag.factory import build_dag
from metaflow_airflow.airflow.ui import LINK_NAME, MetaflowUILink, dag_doc_md, metaflow_ui_url
from metaflow_airflow.manifest.models import StepSpec

pytestmark = pytest.mark.usefixtures("airflow_db")

MANIFEST_URL = "s3://bucket/flows/manifests/F.json"
DOCUMENTED = make_manifest(
    [
        StepSpec(name="start", type="foreach", next=("a",), doc="Fan out over the items."),
        *(
            step.model_copy(update={"doc": "Square one item.\n\n    Keeps | pipes."})
            if step.name == "a"
            else step
            for step in FOREACH_STEPS[1:]
        ),
    ],
    ALL_PARAMETER_TYPES,
)


def test_link_points_at_the_task_pathspec_in_the_metaflow_ui():
    pathspec = "F/airflow-0123456789ab/a/airflow-01234567"
    assert metaflow_ui_url("https://mf.example.com", pathspec) == f"https://mf.example.com/{pathspec}"
    assert metaflow_ui_url("https://mf.example.com/ui/", pathspec) == (
        f"https://mf.example.com/ui/{pathspec}"
    )


def test_link_quotes_what_a_url_cannot_carry():
    assert metaflow_ui_url("https://mf", "F/run 1/s/t#1") == "https://mf/F/run%201/s/t%231"


def test_without_a_configured_ui_the_link_is_empty(monkeypatch):
    monkeypatch.delenv("METAFLOW_AIRFLOW_UI_URL", raising=False)
    dag = build_dag(DOCUMENTED)
    assert MetaflowUILink().get_link(dag.get_task("a"), ti_key=None) == ""


@pytest.mark.parametrize("kubernetes", [False, True], ids=["local", "kubernetes"])
def test_every_metaflow_task_has_the_link_and_it_serializes_the_same(kubernetes):
    manifest = make_manifest(FOREACH_STEPS, kubernetes=kubernetes)
    dag = build_dag(manifest)
    for task in dag.tasks:
        assert [link.name for link in task.operator_extra_links][-1:] == [LINK_NAME]
    first, second = (serialize_dag(build_dag(manifest)) for _ in range(2))
    assert "MetaflowUILink" in json.dumps(first)
    assert json.dumps(first, sort_keys=True, default=str) == json.dumps(
        second, sort_keys=True, default=str
    )


def test_doc_md_tells_what_was_published_by_whom_when_and_where():
    doc = dag_doc_md(DOCUMENTED, MANIFEST_URL)
    assert doc.startswith("## F\n\nA test flow.\n\nWith a longer description.\n")
    assert "| Metaflow flow | `F` from `/f.py` |" in doc
    assert "| Published | by tester at 2026-01-01 00:00:00 UTC |" in doc
    assert f"`{DOCUMENTED.content_hash[:12]}`" in doc
    assert f"| Manifest | `{MANIFEST_URL}` |" in doc
    assert "- **`start`** (foreach): Fan out over the items." in doc
    assert (
        "- **`a`** (linear after `start`, inside foreach `start`): Square one item. Keeps | pipes."
        in doc
    )
    assert "- **`join`** (join after `b`)" in doc


def test_doc_md_is_the_dags_documentation_and_is_deterministic():
    dag = build_dag(DOCUMENTED, manifest_url=MANIFEST_URL)
    assert dag.doc_md == dag_doc_md(DOCUMENTED, MANIFEST_URL)
    assert build_dag(DOCUMENTED, manifest_url=MANIFEST_URL).doc_md == dag.doc_md
    assert dag_doc_md(DOCUMENTED, MANIFEST_URL) == dag_doc_md(DOCUMENTED.model_copy(), MANIFEST_URL)
    assert "(not recorded)" in build_dag(DOCUMENTED).doc_md


def test_doc_md_changes_only_with_the_manifest():
    republished = DOCUMENTED.model_copy(update={"published_by": "someone-else"})
    assert dag_doc_md(republished, MANIFEST_URL) != dag_doc_md(DOCUMENTED, MANIFEST_URL)
    assert "by someone-else" in dag_doc_md(republished, MANIFEST_URL)
