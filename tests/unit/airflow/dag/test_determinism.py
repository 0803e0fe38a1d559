"""The same manifest gives Airflow the same serialized DAG, byte for byte, in fresh processes
(Airflow 3 makes a new DAG version whenever it differs): a cold parse from the store and a warm
parse from the cache, each a new interpreter as Airflow's parses are."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from helpers import env_with_tests_on_path
from manifests import FOREACH, FOREACH_STEPS, make_manifest

from metaflow_airflow import ManifestStore

SERIALIZE = textwrap.dedent(
    """
    import json, sys
    from airflow_harness import serialize_dag
    from metaflow_airflow.airflow.loader.parse import load_dags
    from metaflow_airflow.settings import Settings

    dags = load_dags(settings=Settings(store=sys.argv[1], cache_dir=sys.argv[2]))
    serialized = {d: serialize_dag(dag) for d, dag in sorted(dags.items())}
    with open(sys.argv[3], "w") as out:
        json.dump(serialized, out, sort_keys=True)
    """
)


@pytest.mark.timeout(600)
def test_the_same_manifests_serialize_byte_for_byte_in_fresh_processes(tmp_path: Path) -> None:
    store = ManifestStore(f"file://{tmp_path / 'store'}")
    store.write(FOREACH.model_copy(update={"dag_id": "local_foreach"}))
    store.write(make_manifest(FOREACH_STEPS, kubernetes=True).model_copy(update={"dag_id": "pods"}))
    store.fs.pipe_file(f"{store.root}/manifests/broken.json", b"{")  # its placeholder too

    outputs = []
    for parse in ("cold", "warm"):
        output = tmp_path / f"{parse}.json"
        subprocess.run(
            [sys.executable, "-c", SERIALIZE, store.url, str(tmp_path / "cache"), str(output)],
            capture_output=True,
            check=True,
            env=env_with_tests_on_path(),
        )
        outputs.append(output.read_bytes())

    assert outputs[0] == outputs[1]
    assert sorted(json.loads(outputs[0])) == ["broken", "local_foreach", "pods"]
