"""Every example flow: published, parsed from dags_loader.py by Airflow's DagBag, run on real
Airflow with local compute, and its artifacts compared with a plain ``python flow.py run``."""

from __future__ import annotations

import json

import pytest
from airflow_harness import run_dag, run_state
from helpers import run_locally, user_artifacts

from metaflow_airflow.runtime.ids import metaflow_run_id

pytestmark = pytest.mark.timeout(300)

EXAMPLES = {
    "parameters_flow.py": ("ParametersFlow", {"text": "airflow", "count": 4}),
    "branch_flow.py": ("BranchFlow", {}),
    "foreach_flow.py": ("ForeachFlow", {"offset": 7}),
}


def _cli_args(conf: dict) -> list[str]:
    args = []
    for name, value in conf.items():
        args += [f"--{name}", value if isinstance(value, str) else json.dumps(value)]
    return args


def run_on_airflow(dagbag, store_url: str, dag_id: str, conf: dict) -> str:
    """Parse the store through dags_loader.py, run the DAG, return the Metaflow run id."""
    bag = dagbag(store_url)
    assert bag.import_errors == {}
    dag_run = run_dag(bag.get_dag(dag_id), run_conf=conf)
    assert run_state(dag_run) == "success"
    return metaflow_run_id(dag_run.run_id, dag_id)


@pytest.mark.parametrize("example", sorted(EXAMPLES))
def test_example_on_airflow_matches_local_run(example, publish, dagbag, store_url):
    flow_name, conf = EXAMPLES[example]
    result = publish(example)
    assert result.dag_id == flow_name

    airflow_run = run_on_airflow(dagbag, store_url, flow_name, conf)
    local_run = run_locally(example, *_cli_args(conf))

    assert airflow_run.startswith("airflow-") and len(airflow_run) == len("airflow-") + 12
    assert user_artifacts(flow_name, airflow_run) == user_artifacts(flow_name, local_run)


def test_conf_values_arrive_verbatim_and_typed(publish, dagbag, store_url):
    hostile = "it's $(touch /tmp/mfa-pwned) `touch /tmp/mfa-pwned`; a|b & c \" \\ {{ ds }} \n\t✓"
    conf = {
        "text": hostile,
        "count": 7,
        "ratio": 2.25,
        "loud": True,
        "config": {"nested": [1, {"b": None}], "quote": "'\"$HOME"},
    }
    publish("parameters_flow.py")
    run_id = run_on_airflow(dagbag, store_url, "ParametersFlow", conf)

    received = user_artifacts("ParametersFlow", run_id)["end"]["received"]
    assert received == conf
    assert type(received["count"]) is int and type(received["ratio"]) is float
    assert received["loud"] is True
    assert not __import__("os").path.exists("/tmp/mfa-pwned")


def test_defaults_apply_without_conf(publish, dagbag, store_url):
    publish("parameters_flow.py")
    run_id = run_on_airflow(dagbag, store_url, "ParametersFlow", {})
    received = user_artifacts("ParametersFlow", run_id)["end"]["received"]
    assert received == {
        "text": "hello",
        "count": 3,
        "ratio": 0.5,
        "loud": False,
        "config": {"colors": ["red", "green"]},
    }
