"""Manifests for store and loader tests: small, valid, and different from each other."""

from __future__ import annotations

from datetime import datetime, timezone

from metaflow_airflow import ManifestStore
from metaflow_airflow.manifest import (
    CodePackage,
    FlowManifest,
    LocalCompute,
    MetaflowRuntime,
    StepSpec,
)


def make_manifest(dag_id: str = "Hello", description: str = "A flow.") -> FlowManifest:
    """A two-step local-compute manifest (builds without the Kubernetes provider)."""
    return FlowManifest(
        dag_id=dag_id,
        flow_name="HelloFlow",
        description=description,
        published_at=datetime(2026, 1, 1, 12, 0, tzinfo=timezone.utc),
        published_by="tester",
        source_file="/src/hello_flow.py",
        compute=LocalCompute(),
        metaflow=MetaflowRuntime(
            version="2.19.39",
            flow_file="hello_flow.py",
            datastore="s3",
            datastore_root="s3://bucket/metaflow",
            user="tester",
        ),
        code_package=CodePackage(url="s3://bucket/metaflow/pkg", sha="abc", metadata="{}"),
        steps=(
            StepSpec(name="start", type="start", next=("end",)),
            StepSpec(name="end", type="end", parents=("start",)),
        ),
    )


def put_raw(store: ManifestStore, dag_id: str, data: bytes) -> None:
    """Replace the current manifest of ``dag_id`` with ``data``, bypassing publish."""
    store.fs.makedirs(f"{store.root}/manifests", exist_ok=True)
    store.fs.pipe_file(f"{store.root}/manifests/{dag_id}.json", data)
