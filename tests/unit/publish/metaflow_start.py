"""A flow class as the publish command sees it, built in this process.

``flow_process`` runs the compiler inside Metaflow's CLI, after ``metaflow.cli.start`` has
initialised the flow. :func:`start_flow` makes the same calls, in the same order, on a flow class
defined in a test: parameters and config decorators, flow decorators (``flow_init``: the
schedule, triggers, sensors, ``@project``), ``--with`` decorators, then every step decorator
(``external_init`` and ``step_init``: ``@kubernetes`` defaults, ``@timeout`` seconds, Metaflow's
own refusals). It skips what the compiler never reads (event logger and monitor threads, lint,
pylint). Nothing is uploaded: an ``s3`` datastore is only a root name that ``step_init`` checks.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Literal

import pytest
from metaflow import FlowSpec, current, decorators, parameters, step
from metaflow.datastore import FlowDataStore
from metaflow.graph import FlowGraph
from metaflow.metaflow_config import DEFAULT_DECOSPECS
from metaflow.metaflow_environment import MetaflowEnvironment
from metaflow.plugins import LOGGING_SIDECARS, MONITOR_SIDECARS
from metaflow.plugins.datastores.local_storage import LocalStorage
from metaflow.plugins.datastores.s3_storage import S3Storage
from metaflow.plugins.metadata_providers.local import LocalMetadataProvider
from metaflow.system_context import system_context

S3_ROOT = "s3://metaflow-airflow-unit-tests/metaflow"


@dataclass(frozen=True)
class StartedFlow:
    """What ``flow_process`` reads as ``obj.flow`` and ``obj.graph``."""

    flow: FlowSpec
    graph: FlowGraph


def _echo(*args: Any, **kwargs: Any) -> None:
    """Metaflow's ``echo`` and ``logger``: these tests have nothing to show."""


def start_flow(
    flow_cls: type[FlowSpec],
    *,
    datastore: Literal["local", "s3"] = "local",
    options: dict[str, Any] | None = None,
    with_decorators: Sequence[str] = (),
) -> StartedFlow:
    """``python flow.py --datastore=DATASTORE [options] --with ... airflow-manifest compile``
    up to the point where the publish command runs.

    ``options`` are the flow decorators' top-level options (``branch``, ``production`` of
    ``@project``); ``with_decorators`` are ``--with`` specs such as ``"retry:times=1"``."""
    flow = flow_cls(use_cli=False)
    with parameters.flow_context(flow_cls):
        new_cls = flow_cls._process_config_decorators({})
        if new_cls:  # config mutators made a new class, as in metaflow.cli.start
            flow = new_cls(use_cli=False)
    environment = MetaflowEnvironment(flow)
    event_logger = LOGGING_SIDECARS["nullSidecarLogger"](flow=flow, env=environment)
    monitor = MONITOR_SIDECARS["nullSidecarMonitor"](flow=flow, env=environment)
    metadata = LocalMetadataProvider(environment, flow, event_logger, monitor)
    storage, root = (S3Storage, S3_ROOT) if datastore == "s3" else (LocalStorage, None)
    flow_datastore = FlowDataStore(
        flow.name, environment, metadata, event_logger, monitor, storage_impl=storage, ds_root=root
    )
    decorators._init_flow_decorators(
        flow, flow._graph, environment, flow_datastore, metadata, _echo, _echo, options or {}
    )
    current._set_env(flow=flow, is_running=False)
    parameters.set_parameter_context(flow.name, _echo, flow_datastore, {})
    decospecs = [*with_decorators, *(environment.decospecs() or []), *DEFAULT_DECOSPECS.split()]
    if decospecs:
        decorators._attach_decorators(flow, decospecs)
        flow.__class__._init_graph()
    decorators._init_step_decorators(flow, flow._graph, environment, flow_datastore, _echo)
    return StartedFlow(flow=flow, graph=flow._graph)


@pytest.fixture
def fresh_metaflow_state() -> Iterator[None]:
    """Each test starts its flows as if in a process of its own (see below); a test module
    uses it with ``pytestmark = pytest.mark.usefixtures("fresh_metaflow_state")``, importing
    it from here (a conftest.py would shadow the other test folders' ``conftest`` imports)."""
    with metaflow_globals_restored():
        yield


@contextmanager
def metaflow_globals_restored() -> Iterator[None]:
    """Undo what starting a flow leaves in Metaflow's process-wide state (``current``'s
    ``@project`` names, the parameter context), as if each test had its own process."""
    current_class = dict(vars(type(current)))
    current_instance = dict(vars(current))
    context = parameters.context_proto
    system = {k: copy.copy(v) for k, v in vars(system_context).items()}
    try:
        yield
    finally:
        for name in set(vars(type(current))) - set(current_class):
            delattr(type(current), name)
        for name, value in current_class.items():
            if vars(type(current)).get(name) is not value:
                setattr(type(current), name, value)
        vars(current).clear()
        vars(current).update(current_instance)
        parameters.context_proto = context
        vars(system_context).clear()
        vars(system_context).update(system)


class TwoSteps(FlowSpec):
    """``start`` → ``end``: a base for test flows that only add decorators and Parameters."""

    @step
    def start(self):
        self.next(self.end)

    @step
    def end(self):
        pass
