"""A Metaflow run's user artifacts, read with Metaflow's Client: what the differential tests
compare. Its own module, without side effects, so that a process configured for another
datastore (the topology's S3 on moto) can import it too."""

from __future__ import annotations

import json
import sys
from typing import Any


def user_artifacts(flow_name: str, run_id: str) -> dict[str, dict[str, Any]]:
    """Every user artifact of every task of a run, keyed by step and foreach index path
    (``leaf[2, 1]``: split 1 of the inner foreach inside split 2 of the outer one)."""
    from metaflow import Run, namespace

    namespace(None)
    result: dict[str, dict[str, Any]] = {}
    for step in Run(f"{flow_name}/{run_id}"):
        for task in step:
            stack = task["_foreach_stack"].data if "_foreach_stack" in task else []  # failed tasks
            indexes = [frame.index for frame in stack]
            key = f"{step.id}{indexes}" if indexes else step.id
            result[key] = {
                a.id: a.data for a in task.artifacts if not a.id.startswith("_") and a.id != "name"
            }
    return result


if __name__ == "__main__":  # python run_artifacts.py FLOW RUN_ID: the artifacts as JSON
    print(json.dumps(user_artifacts(sys.argv[1], sys.argv[2]), default=repr, sort_keys=True))
