"""Our ids must be Metaflow's own Airflow ids, so Client lookups and resume keep working."""

from __future__ import annotations

import pytest
from metaflow.plugins.airflow.airflow_utils import run_id_creator, task_id_creator

from metaflow_airflow.runtime.ids import (
    join_input_paths,
    metaflow_run_id,
    metaflow_task_id,
    parameters_task_id,
)

AIRFLOW_RUN = "manual__2026-11-22T04:30:52.450096+00:00"


def test_run_id_is_metaflows_scheme():
    assert metaflow_run_id(AIRFLOW_RUN, "MyFlow") == "airflow-" + run_id_creator([AIRFLOW_RUN, "MyFlow"])


@pytest.mark.parametrize("map_index", [-1, 0, 7])
def test_task_id_in_foreach_flows_includes_map_index(map_index):
    ours = metaflow_task_id(AIRFLOW_RUN, "body", "MyFlow", map_index, flow_has_foreach=True)
    assert ours == "airflow-" + task_id_creator([AIRFLOW_RUN, "body", "MyFlow", map_index])


def test_task_id_without_foreach_ignores_map_index():
    ours = metaflow_task_id(AIRFLOW_RUN, "start", "MyFlow", -1, flow_has_foreach=False)
    assert ours == "airflow-" + task_id_creator([AIRFLOW_RUN, "start", "MyFlow"])


def test_parameters_task_id():
    assert parameters_task_id("airflow-1234abcd") == "airflow-1234abcd-params"


def test_input_paths_use_metaflows_prefix_compression():
    from metaflow.util import decompress_list

    paths = [f"airflow-abc/body/airflow-{i:08d}" for i in range(3)]
    joined = join_input_paths(paths)
    assert joined.startswith("airflow-abc/:")
    assert decompress_list(joined) == paths
    assert join_input_paths(paths[:1]) == paths[0]
