"""What the Airflow UI shows about a Metaflow flow.

- Every Metaflow task instance records its Metaflow run id and task pathspec as XComs, so the
  task's XCom tab names the Metaflow run (what ``resume --origin-run-id`` and the Client need).
- :class:`MetaflowUILink` is an operator extra link from each task to that pathspec in the
  Metaflow UI. It reads the recorded pathspec instead of recomputing ids, so it always agrees
  with what the task ran as. Airflow 3 evaluates links on the worker when a task ends and stores
  the URL; Airflow 2 evaluates them in the webserver, which needs the class registered by our
  plugin (:mod:`metaflow_airflow.airflow.plugin`).
- :func:`dag_doc_md` is each DAG's documentation: flow and step docstrings, source file, who
  published which version when, and where the manifest lives. It is built from the manifest
  alone, so the same manifest always renders the same text (no DAG version churn).
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

import attrs

from metaflow_airflow.airflow.compat import BaseOperatorLink, XCom, airflow_config_option
from metaflow_airflow.airflow.provider import CONFIG_SECTION
from metaflow_airflow.manifest.models import FlowManifest, StepSpec, triggers_summary
from metaflow_airflow.runtime.invocation import StepInvocation
from metaflow_airflow.settings import Settings

LINK_NAME = "Metaflow UI"
RUN_ID_XCOM_KEY = "metaflow_run_id"
PATHSPEC_XCOM_KEY = "metaflow_pathspec"


def record_metaflow_ids(context: Mapping[str, Any], invocation: StepInvocation) -> None:
    """Push this task instance's Metaflow run id and pathspec as XComs, before the step runs,
    so that they are there for a task that fails."""
    ti = context["ti"]
    ti.xcom_push(key=RUN_ID_XCOM_KEY, value=invocation.run_id)
    ti.xcom_push(key=PATHSPEC_XCOM_KEY, value=invocation.pathspec)


def metaflow_ui_base_url() -> str | None:
    """The Metaflow UI's URL: the ``ui_url`` setting, else the option of the same name in the
    ``[metaflow_airflow]`` section of Airflow's configuration; None if unset. Read when a link
    is shown, not once per process: a webserver outlives changes to the environment."""
    return Settings.from_environment().ui_url or airflow_config_option(CONFIG_SECTION, "ui_url")


def metaflow_ui_url(base_url: str, pathspec: str) -> str:
    """The Metaflow UI page of a task: ``<base>/<flow>/<run>/<step>/<task>``."""
    return f"{base_url.rstrip('/')}/{quote(pathspec, safe='/')}"


@attrs.define
class MetaflowUILink(BaseOperatorLink):
    """The "Metaflow UI" button of each Metaflow task; empty (disabled) until the task has
    started or when no Metaflow UI is configured. An attrs class because Airflow 2 serializes
    links with ``attrs.asdict``."""

    name = LINK_NAME

    def get_link(self, operator: Any, *, ti_key: Any) -> str:
        base_url = metaflow_ui_base_url()
        if not base_url:
            return ""
        pathspec = XCom.get_value(ti_key=ti_key, key=PATHSPEC_XCOM_KEY)
        return metaflow_ui_url(base_url, pathspec) if pathspec else ""


def dag_doc_md(manifest: FlowManifest, manifest_url: str | None = None) -> str:
    """The DAG's Markdown documentation, a pure function of the manifest and its URL."""
    published = manifest.published_at.strftime("%Y-%m-%d %H:%M:%S %Z").strip()
    rows = [
        ("Metaflow flow", f"`{manifest.flow_name}` from `{manifest.source_file}`"),
        ("Published", f"by {manifest.published_by} at {published}"),
        (
            "Version",
            f"`{manifest.content_hash[:12]}` (manifest content hash), "
            f"Metaflow {manifest.metaflow.version}",
        ),
        ("Manifest", f"`{manifest_url}`" if manifest_url else "(not recorded)"),
        ("Compute", manifest.compute.kind),
        ("Code package", f"`{manifest.code_package.url}`"),
    ]
    if manifest.project:
        rows.append(("Project", f"{manifest.project.name}, branch {manifest.project.branch}"))
    if manifest.schedule:
        zone = manifest.schedule.timezone or "UTC"
        rows.append(("Schedule", f"`{manifest.schedule.cron}` ({zone})"))
    if manifest.triggers:
        rows.append(("Triggered by", triggers_summary(manifest)))
    lines = [f"## {manifest.flow_name}", ""]
    if manifest.description:
        # Dedented: a docstring's later lines keep their indentation (in manifests published
        # before the publisher dedented them), which Markdown renders as a code block.
        lines += [inspect.cleandoc(manifest.description), ""]
    lines += ["| | |", "|---|---|"]
    lines += [f"| {name} | {_cell(value)} |" for name, value in rows]
    lines += ["", "### Steps", ""]
    lines += [_step_line(step) for step in manifest.steps]
    return "\n".join(lines) + "\n"


def _step_line(step: StepSpec) -> str:
    after = f" after {', '.join(f'`{p}`' for p in step.parents)}" if step.parents else ""
    inside = f", inside foreach `{step.foreach}`" if step.foreach else ""
    doc = " ".join(step.doc.split())
    return f"- **`{step.name}`** ({step.type}{after}{inside}){': ' + doc if doc else ''}"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")
