"""Glue for nested foreach: Airflow cannot map over a mapped task, so the split lists of a
mapped foreach step are flattened by one small task, and its body is mapped over that."""

from __future__ import annotations

from typing import Any

from metaflow_airflow.airflow.compat import BaseOperator
from metaflow_airflow.runtime.invocation import flatten_splits


def splits_task_id(foreach: str) -> str:
    """The flattening task of a nested foreach step."""
    return f"{foreach}__splits"


class ForeachSplitsOperator(BaseOperator):
    """Collects the split indexes every task of a mapped foreach step returned, as
    ``[parent map index, split index]`` pairs in map-index order."""

    ui_color = "#eeeeee"

    def __init__(self, *, foreach: str, **kwargs: Any) -> None:
        super().__init__(task_id=splits_task_id(foreach), **kwargs)
        self.foreach = foreach

    def execute(self, context: Any) -> list[list[int]]:
        split_lists = context["ti"].xcom_pull(task_ids=self.foreach)
        return flatten_splits(list(split_lists or []))
