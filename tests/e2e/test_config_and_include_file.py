"""Metaflow Configs and IncludeFile on Airflow: a Config's values are fixed at publish and read
by every task from the code package, an IncludeFile is read at publish and kept in the datastore
(as Metaflow's own schedulers do); the artifacts equal those of ``python flow.py run``."""

from __future__ import annotations

import pytest
from helpers import run_locally, user_artifacts
from test_examples import run_on_airflow

from metaflow_airflow import ManifestStore

pytestmark = pytest.mark.timeout(300)


def test_config_and_include_file_read_as_under_a_local_run(publish, dagbag, store_url):
    publish("config_include_flow.py")
    manifest = ManifestStore(store_url).read("ConfigIncludeFlow")
    assert [p.name for p in manifest.parameters] == ["table", "scale"]  # no Param for a Config
    airflow = user_artifacts(
        "ConfigIncludeFlow", run_on_airflow(dagbag, store_url, "ConfigIncludeFlow", {"scale": 3})
    )
    local = user_artifacts(
        "ConfigIncludeFlow", run_locally("config_include_flow.py", "--scale", "3")
    )
    assert airflow == local
    assert airflow["start"]["threshold"] == 63
    assert airflow["start"]["rows"] == [["x", "1"], ["y", "2"], ["z", "3"]]
