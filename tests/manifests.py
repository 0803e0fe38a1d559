"""Small hand-written manifests for unit tests of the Airflow side."""

from __future__ import annotations

from datetime import datetime, timezone

from metaflow_airflow.manifest.models import (
    CodePackage,
    FlowManifest,
    KubernetesCompute,
    LocalCompute,
    MetaflowRuntime,
    ParameterSpec,
    StepSpec,
)


def make_manifest(
    steps: list[StepSpec],
    parameters: tuple[ParameterSpec, ...] = (),
    *,
    kubernetes: bool = False,
) -> FlowManifest:
    return FlowManifest(
        dag_id="F",
        flow_name="F",
        description="A test flow.\n\nWith a longer description.",
        published_at=datetime(2026, 1, 1, tzinfo=timezone.utc),
        published_by="tester",
        source_file="/f.py",
        compute=KubernetesCompute() if kubernetes else LocalCompute(),
        metaflow=MetaflowRuntime(
            version="2.19", flow_file="f.py", datastore="s3", datastore_root="s3://b/mf", user="u"
        ),
        code_package=CodePackage(url="s3://b/mf/pkg", sha="0", metadata="{}"),
        parameters=parameters,
        steps=tuple(steps),
    )


FOREACH_STEPS = [
    StepSpec(name="start", type="foreach", next=("a",)),
    StepSpec(name="a", type="linear", parents=("start",), next=("b",), foreach="start"),
    StepSpec(name="b", type="linear", parents=("a",), next=("join",), foreach="start"),
    StepSpec(name="join", type="join", parents=("b",), next=("end",), joins_foreach="start"),
    StepSpec(name="end", type="end", parents=("join",)),
]

ALL_PARAMETER_TYPES = (
    ParameterSpec(name="alpha", type="float", default=0.5),
    ParameterSpec(name="flag", type="bool", default=False),
    ParameterSpec(name="n", type="int", default=3, help="How many."),
    ParameterSpec(name="obj", type="json", default={"a": [1]}),
    ParameterSpec(name="text", type="str", required=True),
)

FOREACH = make_manifest(FOREACH_STEPS, ALL_PARAMETER_TYPES)
