"""compile_steps on real Metaflow graphs, built in this process: shapes, retries, timeouts,
resources, environment, pods, and the steps Airflow cannot run."""

from __future__ import annotations

import platform
from typing import Literal

import pytest
from metaflow import (
    FlowSpec,
    batch,
    catch,
    environment,
    kubernetes,
    parallel,
    resources,
    retry,
    step,
    timeout,
)
from metaflow_start import fresh_metaflow_state, start_flow  # noqa: F401 (a fixture)

from metaflow_airflow.errors import CompileError
from metaflow_airflow.manifest.models import Resources, StepSpec, Tmpfs
from metaflow_airflow.publish.steps import compile_steps

pytestmark = pytest.mark.usefixtures("fresh_metaflow_state")


def compiled(
    flow_cls: type[FlowSpec],
    *,
    kubernetes: bool = False,
    image: str | None = None,
    datastore: Literal["local", "s3"] = "local",
    with_decorators: tuple[str, ...] = (),
) -> dict[str, StepSpec]:
    """The flow's steps by name, as ``publish --compute kubernetes|local [--image]`` compiles
    them (Kubernetes needs a cloud datastore)."""
    started = start_flow(
        flow_cls, datastore="s3" if kubernetes else datastore, with_decorators=with_decorators
    )
    return {s.name: s for s in compile_steps(started.graph, kubernetes=kubernetes, image=image)}


# Shapes ------------------------------------------------------------------------------------


class LinearFlow(FlowSpec):
    @step
    def start(self):
        self.next(self.middle)

    @step
    def middle(self):
        """Does the work.

        In two lines."""
        self.next(self.end)

    @step
    def end(self):
        pass


class BranchFlow(FlowSpec):
    @step
    def start(self):
        self.next(self.left, self.right)

    @step
    def left(self):
        self.next(self.join)

    @step
    def right(self):
        self.next(self.join)

    @step
    def join(self, inputs):
        self.next(self.end)

    @step
    def end(self):
        pass


class NestedForeachFlow(FlowSpec):
    @step
    def start(self):
        self.xs = [1, 2]
        self.next(self.outer, foreach="xs")

    @step
    def outer(self):
        self.ys = [1, 2, 3]
        self.next(self.leaf, foreach="ys")

    @step
    def leaf(self):
        self.next(self.inner_join)

    @step
    def inner_join(self, inputs):
        self.next(self.outer_join)

    @step
    def outer_join(self, inputs):
        self.next(self.end)

    @step
    def end(self):
        pass


class BranchInForeachFlow(FlowSpec):
    @step
    def start(self):
        self.xs = [1, 2]
        self.next(self.fan, foreach="xs")

    @step
    def fan(self):
        self.next(self.a, self.b)

    @step
    def a(self):
        self.next(self.fan_join)

    @step
    def b(self):
        self.next(self.fan_join)

    @step
    def fan_join(self, inputs):
        self.next(self.each_join)

    @step
    def each_join(self, inputs):
        self.next(self.end)

    @step
    def end(self):
        pass


class SwitchFlow(FlowSpec):
    @step
    def start(self):
        self.route = "small"
        self.next({"small": self.small, "large": self.large}, condition="route")

    @step
    def small(self):
        self.next(self.merge)

    @step
    def large(self):
        self.next(self.merge)

    @step
    def merge(self):
        self.next(self.end)

    @step
    def end(self):
        pass


def test_linear_flow_in_topological_order() -> None:
    steps = compiled(LinearFlow)
    assert list(steps) == ["start", "middle", "end"]
    assert [s.type for s in steps.values()] == ["start", "linear", "end"]
    assert steps["middle"].parents == ("start",) and steps["middle"].next == ("end",)
    assert steps["middle"].doc == "Does the work.\n\nIn two lines."
    assert all(s.foreach is None and s.joins_foreach is None for s in steps.values())


def test_branch_join_closes_no_foreach() -> None:
    steps = compiled(BranchFlow)
    assert steps["start"].type == "split" and steps["start"].next == ("left", "right")
    assert steps["join"].type == "join" and steps["join"].parents == ("left", "right")
    assert steps["join"].joins_foreach is None
    assert all(s.foreach is None for s in steps.values())


def test_nested_foreach_membership() -> None:
    """Each body step belongs to its innermost foreach; each join closes its own foreach and
    still belongs to the one around it."""
    steps = compiled(NestedForeachFlow)
    membership = {name: (s.type, s.foreach, s.joins_foreach) for name, s in steps.items()}
    assert membership == {
        "start": ("foreach", None, None),
        "outer": ("foreach", "start", None),
        "leaf": ("linear", "outer", None),
        "inner_join": ("join", "start", "outer"),
        "outer_join": ("join", None, "start"),
        "end": ("end", None, None),
    }


def test_join_of_a_branch_inside_a_foreach_stays_in_the_body() -> None:
    """Only the join of a foreach closes it: a branch's join inside the body is mapped too."""
    steps = compiled(BranchInForeachFlow)
    assert (steps["fan"].type, steps["fan"].foreach) == ("split", "start")
    assert steps["a"].foreach == "start" and steps["b"].foreach == "start"
    assert (steps["fan_join"].foreach, steps["fan_join"].joins_foreach) == ("start", None)
    assert (steps["each_join"].foreach, steps["each_join"].joins_foreach) == (None, "start")


def test_switch_and_the_step_its_branches_meet_at() -> None:
    steps = compiled(SwitchFlow)
    assert steps["start"].type == "split-switch"
    assert set(steps["start"].next) == {"small", "large"}
    assert steps["merge"].type == "linear" and steps["merge"].parents == ("large", "small")
    assert steps["merge"].joins_foreach is None


class RecursiveSwitchFlow(FlowSpec):
    @step
    def start(self):
        self.count = 0
        self.next(self.again)

    @step
    def again(self):
        self.count += 1
        self.done = "yes" if self.count > 2 else "no"
        self.next({"no": self.again, "yes": self.end}, condition="done")

    @step
    def end(self):
        pass


def test_recursive_switch_is_refused() -> None:
    with pytest.raises(CompileError, match="step 'again': its switch can lead back to 'again'"):
        compiled(RecursiveSwitchFlow)


# Retries, timeout, environment -------------------------------------------------------------


class RetriesFlow(FlowSpec):
    @retry(times=2, minutes_between_retries=1)
    @step
    def start(self):
        self.next(self.defaults)

    @retry
    @step
    def defaults(self):
        self.next(self.caught)

    @catch(var="error")
    @step
    def caught(self):
        self.next(self.both)

    @catch
    @retry(times=1, minutes_between_retries=0.5)
    @step
    def both(self):
        self.next(self.end)

    @step
    def end(self):
        pass


def test_retry_and_catch_set_user_and_platform_retries() -> None:
    """@retry's times are user-code attempts; @catch adds Metaflow's fallback attempts on top."""
    steps = compiled(RetriesFlow)
    summary = {
        name: (s.max_user_code_retries, s.retries, s.retry_delay_seconds)
        for name, s in steps.items()
    }
    assert summary == {
        "start": (2, 2, 60),
        "defaults": (3, 3, 120),  # @retry's own defaults: 3 times, 2 minutes apart
        "caught": (0, 3, 120),  # @catch's fallback waits as @retry's default, as on Argo
        "both": (1, 4, 30),
        "end": (0, 0, None),
    }


class TimeoutFlow(FlowSpec):
    @timeout(minutes=5, seconds=30)
    @step
    def start(self):
        self.next(self.hours)

    @timeout(hours=2)
    @step
    def hours(self):
        self.next(self.end)

    @step
    def end(self):
        pass


def test_timeout_adds_its_units_up() -> None:
    steps = compiled(TimeoutFlow)
    assert steps["start"].timeout_seconds == 330
    assert steps["hours"].timeout_seconds == 7200
    assert steps["end"].timeout_seconds is None  # not Metaflow's 5-day default


class EnvironmentFlow(FlowSpec):
    @environment(vars={"MODE": "fast", "LEVEL": 3})
    @step
    def start(self):
        self.next(self.end)

    @step
    def end(self):
        pass


def test_environment_vars_become_strings() -> None:
    steps = compiled(EnvironmentFlow)
    assert steps["start"].env == {"LEVEL": "3", "MODE": "fast"}
    assert steps["end"].env == {}


class WithFlow(FlowSpec):
    @retry(times=4)
    @step
    def start(self):
        self.next(self.end)

    @step
    def end(self):
        pass


def test_with_decorators_are_recorded_for_every_task() -> None:
    """``--with retry`` applies where the source has no @retry, and tasks must add it again;
    a step's own @retry wins and nothing is recorded for it."""
    steps = compiled(WithFlow, with_decorators=("retry:times=1,minutes_between_retries=0",))
    assert steps["end"].decorator_specs == ("retry:times=1,minutes_between_retries=0",)
    assert steps["end"].retries == 1 and steps["end"].retry_delay_seconds == 0
    assert steps["start"].decorator_specs == () and steps["start"].retries == 4


class PlainFlow(FlowSpec):  # its own class: --with attaches decorators to the step functions
    @step
    def start(self):
        self.next(self.end)

    @step
    def end(self):
        pass


def test_with_retry_and_retry_in_the_source_wait_the_same() -> None:
    """``--with retry`` without arguments waits @retry's default two minutes, as in the source."""
    with_retry = compiled(PlainFlow, with_decorators=("retry",))
    assert with_retry["end"].retry_delay_seconds == 120
    assert compiled(RetriesFlow)["defaults"].retry_delay_seconds == 120


# Resources and pods ------------------------------------------------------------------------


class ResourcesFlow(FlowSpec):
    @resources(cpu=0.5, memory=2048, gpu=1)
    @step
    def start(self):
        self.next(self.end)

    @step
    def end(self):
        pass


def test_resources_without_kubernetes() -> None:
    steps = compiled(ResourcesFlow)
    assert steps["start"].resources == Resources(cpu=0.5, memory_mb=2048, disk_mb=10240, gpu=1)
    assert steps["end"].resources == Resources()


class KubernetesFlow(FlowSpec):
    @resources(cpu=4, memory=2048)
    @kubernetes(cpu=2, memory=8192, disk=20480)
    @step
    def start(self):
        self.next(self.bare)

    @kubernetes
    @step
    def bare(self):
        self.next(self.custom)

    @kubernetes(
        image="ghcr.io/acme/train:1.2",
        namespace="ml",
        service_account="trainer",
        secrets="db-credentials, api-keys",
        node_selector="pool=gpu,zone=a",
        labels={"team": "ml"},
        annotations={"cost-center": 42},
        image_pull_policy="Always",
        persistent_volume_claims={"training-data": "/data"},
        use_tmpfs=True,
        memory=8192,
        shared_memory=1024,
        gpu_vendor="amd",
    )
    @step
    def custom(self):
        self.next(self.end)

    @resources(cpu=8, memory=32768)
    @step
    def end(self):
        pass


def test_resources_and_kubernetes_take_the_larger_request() -> None:
    steps = compiled(KubernetesFlow, kubernetes=True, image="registry.example/flow:7")
    assert steps["start"].resources == Resources(cpu=4, memory_mb=8192, disk_mb=20480, gpu=0)
    assert steps["end"].resources == Resources(cpu=8, memory_mb=32768, disk_mb=10240, gpu=0)


def test_publish_image_replaces_only_metaflows_default_image() -> None:
    steps = compiled(KubernetesFlow, kubernetes=True, image="registry.example/flow:7")
    assert steps["start"].pod.image == "registry.example/flow:7"
    assert steps["bare"].pod.image == "registry.example/flow:7"  # Metaflow filled it in
    assert steps["end"].pod.image == "registry.example/flow:7"  # no @kubernetes at all
    assert steps["custom"].pod.image == "ghcr.io/acme/train:1.2"


def test_without_publish_image_pods_get_metaflows_default_image() -> None:
    steps = compiled(KubernetesFlow, kubernetes=True)
    python = "python:{}.{}".format(*platform.python_version_tuple()[:2])
    assert steps["end"].pod.image == python and steps["bare"].pod.image == python
    assert steps["end"].pod.namespace == "default"


def test_kubernetes_attributes_become_the_pod_spec() -> None:
    pod = compiled(KubernetesFlow, kubernetes=True, image="registry.example/flow:7")["custom"].pod
    assert (pod.namespace, pod.service_account) == ("ml", "trainer")
    assert pod.secrets == ("db-credentials", "api-keys")
    assert pod.node_selector == {"pool": "gpu", "zone": "a"}
    assert pod.labels == {"team": "ml"} and pod.annotations == {"cost-center": "42"}
    assert pod.image_pull_policy == "Always"
    assert pod.persistent_volume_claims == {"training-data": "/data"}
    assert pod.tmpfs == Tmpfs(size_mb=4096, path="/metaflow_temp")  # half the memory
    assert pod.shared_memory_mb == 1024 and pod.gpu_vendor == "amd"


def test_local_compute_has_no_pod() -> None:
    steps = compiled(ResourcesFlow)
    assert steps["start"].pod.image is None and steps["start"].pod.tmpfs is None


# Refusals ----------------------------------------------------------------------------------


class BatchFlow(FlowSpec):
    @step
    def start(self):
        self.next(self.train)

    @batch(cpu=2)
    @step
    def train(self):
        self.next(self.end)

    @step
    def end(self):
        pass


def test_batch_is_refused_naming_the_step() -> None:
    """With the s3 datastore Metaflow's own check of @batch passes, so the compiler refuses."""
    with pytest.raises(CompileError) as refused:
        compiled(BatchFlow, datastore="s3")
    assert str(refused.value).startswith("step 'train': @batch is not supported on Airflow")
    assert "use @kubernetes or @resources" in str(refused.value)


class ParallelFlow(FlowSpec):
    @step
    def start(self):
        self.next(self.train, num_parallel=2)

    @parallel
    @step
    def train(self):
        self.next(self.join)

    @step
    def join(self, inputs):
        self.next(self.end)

    @step
    def end(self):
        pass


def test_parallel_is_refused() -> None:
    with pytest.raises(CompileError, match="@parallel steps are not supported on Airflow"):
        compiled(ParallelFlow)


def test_parallel_refusal_names_the_parallel_step() -> None:
    with pytest.raises(CompileError, match="step 'train'"):
        compiled(ParallelFlow)


class DeadEndFlow(FlowSpec):
    @step
    def start(self):
        self.next(self.middle)

    @step
    def middle(self):
        pass

    @step
    def end(self):
        pass


def test_step_without_a_transition_is_refused() -> None:
    """Publishing runs no lint: a step that never calls self.next has no type to compile."""
    with pytest.raises(CompileError, match="step 'middle': .* not supported on Airflow"):
        compiled(DeadEndFlow)
