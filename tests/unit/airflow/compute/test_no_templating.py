"""A manifest is data: no string of it is rendered by Jinja, on either compute. Airflow renders
an operator's ``template_fields`` on the worker before the task runs, with the run's context
(``{{ conn.<id>.password }}`` would put a real password into the pod spec), so the Metaflow
operators declare none: what they need per task instance they compute themselves."""

from __future__ import annotations

import pytest
from manifests import FOREACH_STEPS, make_manifest

from metaflow_airflow.airflow.compat import MappedTaskGroup
from metaflow_airflow.airflow.compute.kubernetes import MetaflowKubernetesOperator
from metaflow_airflow.airflow.compute.local import MetaflowLocalOperator
from metaflow_airflow.airflow.dag.factory import build_dag
from metaflow_airflow.manifest.models import PodSpec

TEMPLATE = "{{ 6 * 7 }}"  # renders to 42 wherever Jinja sees it, whatever the context


def hostile_manifest(kubernetes: bool):
    pod = PodSpec(
        image=f"registry/image:{TEMPLATE}",
        namespace=f"ns-{TEMPLATE}",
        labels={"team": TEMPLATE},
        annotations={"note": TEMPLATE},
        node_selector={"pool": TEMPLATE},
        secrets=(f"secret-{TEMPLATE}",),
    )
    steps = [s.model_copy(update={"pod": pod, "env": {"VALUE": TEMPLATE}}) for s in FOREACH_STEPS]
    return make_manifest(steps, kubernetes=kubernetes).model_copy(
        update={"published_by": TEMPLATE, "description": TEMPLATE}
    )


@pytest.mark.parametrize("operator", [MetaflowKubernetesOperator, MetaflowLocalOperator])
def test_the_metaflow_operators_template_nothing(operator: type) -> None:
    assert tuple(operator.template_fields) == ()


def _rendered(task, context: dict) -> None:
    """What the worker does to a task before it runs (mapped tasks render through their
    unmapped operator)."""
    task.render_template_fields(context)


@pytest.mark.parametrize("step", ["start", "a"], ids=["task", "mapped task"])
def test_manifest_strings_reach_the_pod_spec_verbatim(step: str) -> None:
    dag = build_dag(hostile_manifest(kubernetes=True))
    task = dag.get_task(step)
    assert isinstance(task.task_group, MappedTaskGroup) == (step == "a")
    context: dict = {"ds": "2026-01-01", "params": {}}
    _rendered(task, context)

    assert task.image == f"registry/image:{TEMPLATE}"
    assert task.namespace == f"ns-{TEMPLATE}"
    assert task.labels["team"] == TEMPLATE
    assert task.annotations["note"] == TEMPLATE
    assert task.annotations["metaflow/owner"] == TEMPLATE
    assert task.node_selector == {"pool": TEMPLATE}
    assert [e.secret_ref.name for e in task.env_from] == [f"secret-{TEMPLATE}"]


def test_local_compute_renders_no_manifest_string() -> None:
    dag = build_dag(hostile_manifest(kubernetes=False))
    for task in dag.tasks:
        before = dict(vars(task))
        _rendered(task, {"ds": "2026-01-01", "params": {}})
        assert not [name for name, value in vars(task).items()
                    if isinstance(value, str) and value != before.get(name)]
