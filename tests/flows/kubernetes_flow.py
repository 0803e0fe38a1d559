from metaflow import FlowSpec, kubernetes, resources, step


class KubernetesFlow(FlowSpec):
    """Every @kubernetes attribute Metaflow's own integration refuses or ignores."""

    @kubernetes(
        image="ghcr.io/acme/train:1.2",
        namespace="ml",
        service_account="trainer",
        secrets=["db-credentials"],
        node_selector={"pool": "gpu"},
        tolerations=[{"key": "gpu", "operator": "Equal", "value": "true", "effect": "NoSchedule"}],
        labels={"team": "ml"},
        annotations={"cost-center": "42"},
        image_pull_policy="Always",
        image_pull_secrets=["registry-credentials"],
        persistent_volume_claims={"training-data": "/data"},
        use_tmpfs=True,
        tmpfs_size=2048,
        shared_memory=1024,
        security_context={"run_as_user": 1000, "run_as_non_root": True},
        cpu=2,
        memory=8192,
        gpu=1,
    )
    @step
    def start(self):
        self.next(self.middle)

    @kubernetes(cpu=3)
    @step
    def middle(self):
        self.next(self.end)

    @resources(cpu=4, memory=16384, disk=20480)
    @step
    def end(self):
        pass


if __name__ == "__main__":
    KubernetesFlow()
