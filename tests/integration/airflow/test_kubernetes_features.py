"""@kubernetes and @resources → the pod KubernetesPodOperator would submit, including what
Metaflow's own integration refuses (PVCs, tmpfs, image_pull_policy) or ignores (tolerations,
labels, annotations, image pull secrets, security context)."""

from __future__ import annotations

import pytest
from pods import prepared_pod

pytestmark = pytest.mark.timeout(180)


@pytest.fixture
def pods(publish_to_s3):
    manifest, dag = publish_to_s3("kubernetes_flow.py")
    return {step: prepared_pod(manifest, dag, step)[1] for step in ("start", "end")}


def test_kubernetes_attributes_shape_the_pod(pods):
    pod = pods["start"]
    spec, container = pod.spec, pod.spec.containers[0]
    assert container.image == "ghcr.io/acme/train:1.2"
    assert container.image_pull_policy == "Always"
    assert [s.name for s in spec.image_pull_secrets] == ["registry-credentials"]
    assert pod.metadata.namespace == "ml"
    assert spec.service_account_name == "trainer"
    assert [e.secret_ref.name for e in container.env_from] == ["db-credentials"]
    assert spec.node_selector == {"pool": "gpu"}
    (toleration,) = spec.tolerations
    assert (toleration.key, toleration.operator, toleration.value, toleration.effect) == (
        "gpu", "Equal", "true", "NoSchedule"
    )
    assert pod.metadata.labels["team"] == "ml"
    assert pod.metadata.annotations["cost-center"] == "42"
    assert container.security_context.run_as_user == 1000
    assert container.security_context.run_as_non_root is True


def test_volumes_for_claims_tmpfs_and_shared_memory(pods):
    pod = pods["start"]
    volumes = {v.name: v for v in pod.spec.volumes}
    mounts = {m.name: m.mount_path for m in pod.spec.containers[0].volume_mounts}
    assert volumes["training-data"].persistent_volume_claim.claim_name == "training-data"
    assert mounts["training-data"] == "/data"
    tmpfs = volumes["tmpfs-ephemeral-volume"].empty_dir
    assert (tmpfs.medium, tmpfs.size_limit) == ("Memory", "2048Mi")
    assert mounts["tmpfs-ephemeral-volume"] == "/metaflow_temp"
    assert volumes["dhsm"].empty_dir.size_limit == "1024Mi"
    assert mounts["dhsm"] == "/dev/shm"
    env = {e.name: e.value for e in pod.spec.containers[0].env}
    assert env["METAFLOW_TEMPDIR"] == "/metaflow_temp"


def test_resources_take_the_larger_request(pods):
    start = pods["start"].spec.containers[0].resources
    assert start.requests == {"cpu": "2", "memory": "8192M", "ephemeral-storage": "10240M"}
    assert start.limits == {"nvidia.com/gpu": "1"}
    end = pods["end"].spec.containers[0].resources
    assert end.requests == {"cpu": "4", "memory": "16384M", "ephemeral-storage": "20480M"}
    assert end.limits is None


def test_steps_without_kubernetes_get_metaflows_defaults(pods):
    end = pods["end"]
    assert end.spec.containers[0].image == "python:3.11"  # publish --image
    assert end.metadata.namespace == "default"
    assert not end.spec.tolerations and not end.spec.node_selector


def test_publish_image_replaces_metaflows_default_but_not_a_chosen_image(publish_to_s3):
    manifest, dag = publish_to_s3("kubernetes_flow.py", image="registry.example.com/flows:7")
    images = {
        step: prepared_pod(manifest, dag, step)[1].spec.containers[0].image
        for step in ("start", "middle", "end")
    }
    assert images == {
        "start": "ghcr.io/acme/train:1.2",  # @kubernetes(image=...)
        "middle": "registry.example.com/flows:7",  # bare @kubernetes
        "end": "registry.example.com/flows:7",  # no @kubernetes
    }


def test_every_task_records_its_code_package(pods):
    env = {e.name: e.value for e in pods["end"].spec.containers[0].env}
    assert env["METAFLOW_CODE_URL"].startswith("s3://")
    assert env["METAFLOW_CODE_DS"] == "s3"
    assert len(env["METAFLOW_CODE_SHA"]) == 40
