"""On real Airflow: every Metaflow task instance shows its Metaflow run id and pathspec (XCom tab)
and a "Metaflow UI" link to that pathspec, foreach body tasks included; the plugin is loaded."""

from __future__ import annotations

import pytest
from airflow_harness import extra_link_url, loaded_plugin_names, run_dag, run_state, stored_xcom

from metaflow_airflow.airflow.plugin import PLUGIN_NAME
from metaflow_airflow.airflow.ui import LINK_NAME, PATHSPEC_XCOM_KEY, RUN_ID_XCOM_KEY
from metaflow_airflow.runtime.ids import metaflow_run_id

pytestmark = pytest.mark.timeout(300)

UI = "https://metaflow-ui.example.com/ui"


def test_each_task_instance_names_its_metaflow_task_and_links_to_it(
    publish, dagbag, store_url, monkeypatch
):
    from metaflow import Task, namespace

    monkeypatch.setenv("METAFLOW_AIRFLOW_UI_URL", UI)
    publish("foreach_flow.py")
    dag = dagbag(store_url).get_dag("ForeachFlow")
    dag_run = run_dag(dag)
    assert run_state(dag_run) == "success"
    run_id = metaflow_run_id(dag_run.run_id, "ForeachFlow")

    namespace(None)
    instances = [
        ("start", -1),
        *((step, i) for step in ("square", "shift") for i in range(4)),
        ("join", -1),
        ("end", -1),
    ]
    pathspecs = set()
    for task_id, map_index in instances:
        assert stored_xcom(dag_run, task_id, RUN_ID_XCOM_KEY, map_index) == run_id
        pathspec = stored_xcom(dag_run, task_id, PATHSPEC_XCOM_KEY, map_index)
        assert pathspec.startswith(f"ForeachFlow/{run_id}/{task_id}/")
        assert Task(pathspec).successful
        link = extra_link_url(dag_run, dag.get_task(task_id), LINK_NAME, map_index)
        assert link == f"{UI}/{pathspec}"
        pathspecs.add(pathspec)
    assert len(pathspecs) == len(instances)  # each mapped task links to its own Metaflow task


def test_the_plugin_is_registered_through_its_entry_point(airflow_db):
    assert PLUGIN_NAME in loaded_plugin_names()
