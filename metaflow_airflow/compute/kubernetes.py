"""Kubernetes compute: each step runs in a pod through KubernetesPodOperator.

The pod runs Metaflow's own container bootstrap (fetch and unpack the code package, keep the
logs), recorded in the manifest at publish, around the shared step commands. Ids are resolved
when the pod is built; parameter values go to the container's environment, never into the script.
"""

from __future__ import annotations

import json
import shlex
from typing import Any

from airflow.providers.cncf.kubernetes.operators.pod import KubernetesPodOperator
from kubernetes.client import models as k8s

from ..command import StepCommands, render_step_commands
from ..manifest import ContainerScript, FlowManifest, KubernetesCompute, StepSpec
from ..runtime import StepInvocation, TaskRef, resolve_invocation, split_count_result
from .context import task_ref_from_context

# KubernetesPodOperator's XCom convention: the sidecar reads this file when the task ends.
XCOM_RETURN_FILE = "/airflow/xcom/return.json"
LOG_DIR = "/tmp/metaflow-logs"


class MetaflowKubernetesOperator(KubernetesPodOperator):
    """Runs one Metaflow step in a pod; a foreach step returns its split indexes."""

    def __init__(self, *, manifest: FlowManifest, step: StepSpec, **kwargs: Any) -> None:
        compute = manifest.compute
        assert isinstance(compute, KubernetesCompute)
        super().__init__(
            task_id=step.name,
            name=step.name.replace("_", "-").lower(),
            image=step.image or compute.image,
            namespace=compute.namespace,
            service_account_name=compute.service_account,
            cmds=["bash", "-c"],
            arguments=[],
            container_resources=_resources(step),
            labels={
                "app.kubernetes.io/name": "metaflow-task",
                "app.kubernetes.io/part-of": "metaflow",
            },
            annotations={
                "metaflow/flow_name": manifest.flow_name,
                "metaflow/step_name": step.name,
                "metaflow/owner": manifest.published_by,
            },
            do_xcom_push=step.type == "foreach",
            get_logs=True,
            log_events_on_failure=True,
            reattach_on_restart=False,
            on_finish_action="delete_pod",
            **kwargs,
        )
        self.manifest = manifest
        self.step = step

    def prepare(self, ref: TaskRef) -> StepInvocation:
        """Fill in the container's command and environment for one task instance."""
        invocation = resolve_invocation(self.manifest, self.step, ref)
        assert isinstance(self.manifest.compute, KubernetesCompute)
        commands = render_step_commands(
            self.manifest,
            self.step,
            invocation,
            python=self.manifest.compute.python,
            result_file=XCOM_RETURN_FILE,
        )
        self.arguments = [pod_script(self.manifest.code_package.container, commands)]
        env = {**commands.env, **_log_env(self.manifest, invocation)}
        self.env_vars = [k8s.V1EnvVar(name=k, value=v) for k, v in sorted(env.items())]
        return invocation

    def build_pod_request_obj(self, context: Any = None, **kwargs: Any) -> k8s.V1Pod:
        if context is not None:
            self.prepare(task_ref_from_context(context, self.step))
        return super().build_pod_request_obj(context, **kwargs)

    def execute(self, context: Any) -> list[int] | None:
        result = super().execute(context)
        if self.step.type == "foreach":
            payload = json.loads(result) if isinstance(result, str) else result
            return split_count_result(payload)
        return None


def pod_script(container: ContainerScript, commands: StepCommands) -> str:
    """``bash -c`` text: Metaflow's bootstrap, then the step commands with their logs kept."""
    steps = " && ".join(shlex.join(argv) for argv in commands.argvs)
    script = " && ".join(
        [f"mkdir -p {LOG_DIR}", *container.setup, container.capture_logs.replace("{commands}", steps)]
    )
    if container.save_logs:
        script += f"; c=$?; {container.save_logs}; exit $c"
    return script


def _log_env(manifest: FlowManifest, invocation: StepInvocation) -> dict[str, str]:
    """Where Metaflow's log capture (metaflow.mflog) writes and uploads this task's logs."""
    return {
        "MF_PATHSPEC": invocation.pathspec,
        "MF_ATTEMPT": str(invocation.retry_count),
        "MF_DATASTORE": manifest.metaflow.datastore,
        "MF_DATASTORE_ROOT": manifest.metaflow.datastore_root,
        "MFLOG_STDOUT": f"{LOG_DIR}/mflog_stdout",
        "MFLOG_STDERR": f"{LOG_DIR}/mflog_stderr",
    }


def _resources(step: StepSpec) -> k8s.V1ResourceRequirements:
    resources = step.resources
    requests = {
        "cpu": f"{resources.cpu:g}",
        "memory": f"{resources.memory_mb}M",
        "ephemeral-storage": f"{resources.disk_mb}M",
    }
    limits = {"nvidia.com/gpu": str(resources.gpu)} if resources.gpu else None
    return k8s.V1ResourceRequirements(requests=requests, limits=limits)
