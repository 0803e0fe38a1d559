"""docs/features.md cannot drift: its conformance table is the one the suite's tables make
(shapes, behaviours, known failures, documented differences), and it names every decorator the
installed Metaflow registers."""

from __future__ import annotations

import features_doc

# Decorators Metaflow's own schedulers and tests add to steps; no user writes them.
INTERNAL = {
    "airflow_internal",
    "argo_workflows_internal",
    "step_functions_internal",
    "unbounded_test_foreach_internal",
}


def test_conformance_table_is_made_from_the_suite():
    text = features_doc.FEATURES.read_text(encoding="utf-8")
    regenerate = "run: PYTHONPATH=. .venv/bin/python tests/conformance/features_doc.py --write"
    assert features_doc.with_block(text) == text, regenerate


def test_every_metaflow_decorator_has_a_status():
    from metaflow.plugins import FLOW_DECORATORS, STEP_DECORATORS

    text = features_doc.FEATURES.read_text(encoding="utf-8")
    names = {d.name for d in [*STEP_DECORATORS, *FLOW_DECORATORS]} - INTERNAL
    assert sorted(name for name in names if f"@{name}" not in text) == []
