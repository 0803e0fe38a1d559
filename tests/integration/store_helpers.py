"""Manifests for store and loader tests: small, valid, and different from each other."""

from __future__ import annotations

from datetime import datetime, timezone

from metaflow_airflow import ManifestStore
from metaflow_airflow.manifest.models import (
    CodePackage,
    FlowManifest,
    LocalCompute,
    MetaflowRuntime,
    ParameterSpec,
    Resources,
    StepSpec,
)


def make_manifest(dag_id: str = "Hello", description: str = "A flow.") -> FlowManifest:
    """A two-step local-compute manifest (builds without the Kubernetes provider) with a
    parameter, resources and tags, so that a store round trip carries every kind of field."""
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
            env={"METAFLOW_DEFAULT_DATASTORE": "s3"},
            user="tester",
        ),
        code_package=CodePackage(
            url="s3://bucket/metaflow/HelloFlow/data/ab/abcdef", sha="abcdef", metadata="{}"
        ),
        parameters=(ParameterSpec(name="alpha", type="float", default=0.5),),
        steps=(
            StepSpec(name="start", type="start", next=("end",), resources=Resources(cpu=2)),
            StepSpec(name="end", type="end", parents=("start",)),
        ),
        tags=("team:ml",),
    )


def put_raw(store: ManifestStore, dag_id: str, data: bytes) -> None:
    """Replace the current manifest of ``dag_id`` with ``data``, bypassing publish."""
    store.fs.makedirs(f"{store.root}/manifests", exist_ok=True)
    store.fs.pipe_file(f"{store.root}/manifests/{dag_id}.json", data)
