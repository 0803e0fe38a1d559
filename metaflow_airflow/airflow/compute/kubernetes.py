"""Kubernetes compute: each step runs in a pod through KubernetesPodOperator.

The pod runs Metaflow's own container bootstrap (fetch and unpack the code package, keep the
logs), recorded in the manifest at publish, around the shared step commands. Ids are resolved
when the pod is built; parameter values go to the container's environment, never into the script.
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Sequence
from typing import Any, TypeVar

from airflow.providers.cncf.kubernetes.operators.pod import KubernetesPodOperator
from kubernetes.client import Configuration
from kubernetes.client import models as k8s

from metaflow_airflow.airflow.compat import SkipMixin
from metaflow_airflow.airflow.compute.context import (
    BoundStep,
    hand_back,
    resolve_or_fail,
    task_ref_from_context,
)
from metaflow_airflow.airflow.compute.run_version import stay_on_run_version
from metaflow_airflow.airflow.ui import MetaflowUILink, record_metaflow_ids
from metaflow_airflow.manifest.models import (
    ContainerScript,
    FlowManifest,
    KubernetesCompute,
    PodSpec,
    StepSpec,
)
from metaflow_airflow.runtime.commands import (
    REPORTING_STEP_TYPES,
    StepCommands,
    log_env,
    render_step_commands,
)
from metaflow_airflow.runtime.invocation import StepInvocation, TaskRef

# KubernetesPodOperator's XCom convention: the sidecar reads this file when the task ends.
XCOM_RETURN_FILE = "/airflow/xcom/return.json"
LOG_DIR = "/tmp/metaflow-logs"
_MODEL_CONFIGURATION = Configuration()
Model = TypeVar("Model")


class MetaflowKubernetesOperator(BoundStep, KubernetesPodOperator, SkipMixin):
    """Runs one Metaflow step in a pod; a foreach step returns its split indexes. Built by
    :func:`~metaflow_airflow.airflow.dag.factory.build_dag` from :func:`pod_arguments`: an
    ``__init__`` of its own would make Airflow apply the default arguments once more per task
    (deep-copying the DAG's params each time), a large part of a task's parse time
    (docs/performance.md)."""

    operator_extra_links = (*KubernetesPodOperator.operator_extra_links, MetaflowUILink())
    # A manifest is data: none of its strings (image, labels, annotations, namespace, the
    # publisher in the owner annotation...) may be rendered by Jinja on the worker, where the
    # context reaches connections and variables. What depends on the task instance (command,
    # environment) is computed by prepare(), not templated.
    template_fields: Sequence[str] = ()

    def prepare(self, ref: TaskRef) -> StepInvocation:
        """Fill in the container's command and environment for one task instance."""
        invocation = resolve_or_fail(self.manifest, self.step, ref)
        self.invocation = invocation
        assert isinstance(self.manifest.compute, KubernetesCompute)
        commands = render_step_commands(
            self.manifest,
            self.step,
            invocation,
            python=self.manifest.compute.python,
            result_file=XCOM_RETURN_FILE,
        )
        self.arguments = [pod_script(self.manifest.code_package.container, self.step, commands)]
        env = {**commands.env, **log_env(self.manifest, invocation, LOG_DIR)}
        if self.step.pod.tmpfs:  # Metaflow puts its temporary files on the tmpfs volume
            env["METAFLOW_TEMPDIR"] = self.step.pod.tmpfs.path
        self.env_vars = [_model(k8s.V1EnvVar, name=k, value=v) for k, v in sorted(env.items())]
        return invocation

    def build_pod_request_obj(self, context: Any = None, **kwargs: Any) -> k8s.V1Pod:
        if context is not None:
            self.prepare(task_ref_from_context(context, self.manifest, self.step))
            record_metaflow_ids(context, self.invocation)
        return super().build_pod_request_obj(context, **kwargs)

    def execute(self, context: Any) -> list[int] | None:
        stay_on_run_version(self, context)
        result = super().execute(context)
        if isinstance(result, str):
            result = json.loads(result)
        return hand_back(self, context, self.step, self.invocation, result)


def pod_arguments(manifest: FlowManifest, step: StepSpec) -> dict[str, Any]:
    """The KubernetesPodOperator arguments of ``step``'s pod (all but the command and its
    environment, which depend on the task instance: :meth:`MetaflowKubernetesOperator.prepare`)."""
    compute = manifest.compute
    assert isinstance(compute, KubernetesCompute)
    pod = step.pod
    connection: dict[str, Any] = {"in_cluster": compute.in_cluster}
    if compute.kubernetes_conn_id:
        connection["kubernetes_conn_id"] = compute.kubernetes_conn_id
    volumes, mounts = _volumes(pod)
    return dict(
        name=step.name.replace("_", "-").lower(),
        image=pod.image,
        image_pull_policy=pod.image_pull_policy,
        image_pull_secrets=[
            _model(k8s.V1LocalObjectReference, name=n) for n in pod.image_pull_secrets
        ],
        namespace=pod.namespace,
        service_account_name=pod.service_account,
        env_from=[
            _model(k8s.V1EnvFromSource, secret_ref=_model(k8s.V1SecretEnvSource, name=name))
            for name in pod.secrets
        ],
        node_selector=dict(pod.node_selector) or None,
        tolerations=[_model(k8s.V1Toleration, **t) for t in pod.tolerations] or None,
        volumes=volumes,
        volume_mounts=mounts,
        container_security_context=(
            _model(k8s.V1SecurityContext, **pod.security_context) if pod.security_context else None
        ),
        cmds=["bash", "-c"],
        arguments=[],
        container_resources=_resources(step),
        labels={
            **pod.labels,
            "app.kubernetes.io/name": "metaflow-task",
            "app.kubernetes.io/part-of": "metaflow",
        },
        annotations={
            **pod.annotations,
            "metaflow/flow_name": manifest.flow_name,
            "metaflow/step_name": step.name,
            "metaflow/owner": manifest.published_by,
        },
        do_xcom_push=step.type in REPORTING_STEP_TYPES,
        get_logs=True,
        log_events_on_failure=True,
        reattach_on_restart=False,
        on_finish_action="delete_pod",
        **connection,
    )


def _model(model: type[Model], **fields: Any) -> Model:
    """A Kubernetes model object sharing one client configuration: by default each object
    builds its own (loggers included), a large part of a task's parse time
    (docs/performance.md)."""
    return model(local_vars_configuration=_MODEL_CONFIGURATION, **fields)


def pod_script(container: ContainerScript, step: StepSpec, commands: StepCommands) -> str:
    """``bash -c`` text: Metaflow's bootstrap, then the step commands with their logs kept."""
    steps = " && ".join(
        [*container.bootstrap.get(step.name, ()), *(shlex.join(argv) for argv in commands.argvs)]
    )
    script = " && ".join(
        [
            f"mkdir -p {LOG_DIR}",
            *container.setup,
            container.capture_logs.replace("{commands}", steps),
        ]
    )
    if container.save_logs:
        script += f"; c=$?; {container.save_logs}; exit $c"
    return script


def _resources(step: StepSpec) -> k8s.V1ResourceRequirements:
    resources = step.resources
    requests = {
        "cpu": f"{resources.cpu:g}",
        "memory": f"{resources.memory_mb}M",
        "ephemeral-storage": f"{resources.disk_mb}M",
    }
    gpu = f"{step.pod.gpu_vendor.lower()}.com/gpu"
    limits = {gpu: str(resources.gpu)} if resources.gpu else None
    return _model(k8s.V1ResourceRequirements, requests=requests, limits=limits)


def _volumes(pod: PodSpec) -> tuple[list[k8s.V1Volume], list[k8s.V1VolumeMount]]:
    """Persistent volume claims, the tmpfs scratch space and /dev/shm."""
    volumes, mounts = [], []
    for claim, path in sorted(pod.persistent_volume_claims.items()):
        volumes.append(
            _model(
                k8s.V1Volume,
                name=claim,
                persistent_volume_claim=_model(
                    k8s.V1PersistentVolumeClaimVolumeSource, claim_name=claim
                ),
            )
        )
        mounts.append(_model(k8s.V1VolumeMount, name=claim, mount_path=path))
    memory_volumes = []
    if pod.tmpfs:
        memory_volumes.append(("tmpfs-ephemeral-volume", pod.tmpfs.path, pod.tmpfs.size_mb))
    if pod.shared_memory_mb:
        memory_volumes.append(("dhsm", "/dev/shm", pod.shared_memory_mb))
    for name, path, size_mb in memory_volumes:
        volumes.append(
            _model(
                k8s.V1Volume,
                name=name,
                empty_dir=_model(
                    k8s.V1EmptyDirVolumeSource, medium="Memory", size_limit=f"{size_mb}Mi"
                ),
            )
        )
        mounts.append(_model(k8s.V1VolumeMount, name=name, mount_path=path))
    return volumes, mounts
