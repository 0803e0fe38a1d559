"""The publisher's source check is safe to run from several threads at once (concurrent
``publish_flow`` calls): on CPython 3.11 two AST parses racing in one interpreter can fail with
``SystemError: AST constructor recursion depth mismatch`` when a garbage collection inside one
of them runs Python code and lets the other thread in (python/cpython#106905)."""

from __future__ import annotations

import gc
import threading
from pathlib import Path

from metaflow_airflow.publish.support import refuse_unsupported_decorators

STEPS = 300


class _Finalized:
    """Cyclic garbage whose finalizer runs Python code during a collection, with a loop: the
    interpreter may switch threads at its jump back."""

    def __del__(self) -> None:
        for _ in range(3):
            pass


def _flow_source() -> str:
    steps = "".join(
        f"    @step\n    def s{i}(self):\n        items = {list(range(20))}\n"
        f"        self.next(self.s{i + 1})\n"
        for i in range(STEPS)
    )
    return f"from metaflow import FlowSpec, step\n\n\nclass F(FlowSpec):\n{steps}"


def test_flows_checked_by_several_threads_at_once(tmp_path: Path) -> None:
    flow = tmp_path / "flow.py"
    flow.write_text(_flow_source())
    failures: list[BaseException] = []

    def check_repeatedly() -> None:
        for _ in range(30):
            try:
                refuse_unsupported_decorators(flow)
            except BaseException as exc:  # noqa: BLE001 - collected for the assertion
                failures.append(exc)

    def make_cyclic_garbage() -> None:
        for _ in range(20_000):
            first, second = _Finalized(), _Finalized()
            first.other, second.other = second, first  # type: ignore[attr-defined]

    thresholds = gc.get_threshold()
    gc.set_threshold(50, 2, 2)  # collections inside the parses, as under a busy publisher
    try:
        threads = [threading.Thread(target=check_repeatedly) for _ in range(4)]
        threads.append(threading.Thread(target=make_cyclic_garbage))
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        gc.set_threshold(*thresholds)

    assert failures == []
