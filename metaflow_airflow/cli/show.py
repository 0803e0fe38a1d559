"""``metaflow-airflow show DAG_ID``."""

from __future__ import annotations

import json

import click

from metaflow_airflow.cli.options import storage_options_option, store_option
from metaflow_airflow.manifest.models import FlowManifest, StepSpec, triggers_summary
from metaflow_airflow.store.manifest_store import ManifestStore


@click.command(name="show")
@click.argument("dag_id")
@store_option
@storage_options_option
@click.option("--json", "as_json", is_flag=True, help="Print the manifest and its URL as JSON.")
def show_command(dag_id: str, store: str, storage_options: dict, as_json: bool) -> None:
    """Show one published flow: who published which version when, its steps and parameters.

    \b
    Examples:
      metaflow-airflow show ForeachFlow --store s3://bucket/flows
      metaflow-airflow show ForeachFlow --json | jq .manifest.steps
    """
    manifests = ManifestStore(store, storage_options)
    manifest = manifests.read(dag_id)
    url = manifests.manifest_url(dag_id)
    if as_json:
        payload = {"manifest_url": url, "manifest": manifest.model_dump(mode="json")}
        click.echo(json.dumps(payload, sort_keys=True, indent=2))
        return
    for line in summary(manifest, url):
        click.echo(line)


def summary(manifest: FlowManifest, url: str) -> list[str]:
    """The manifest in a few aligned lines."""
    runtime = manifest.metaflow
    rows = [
        ("dag_id", manifest.dag_id),
        ("flow", f"{manifest.flow_name} ({manifest.source_file})"),
        ("manifest", url),
        ("version", manifest.content_hash[:12]),
        ("published", f"by {manifest.published_by} at {manifest.published_at.isoformat()}"),
        ("compute", manifest.compute.kind),
        (
            "metaflow",
            f"{runtime.version}; datastore {runtime.datastore} {runtime.datastore_root}; "
            f"metadata {runtime.metadata}",
        ),
        ("code", manifest.code_package.url),
        (
            "schedule",
            f"{manifest.schedule.cron} ({manifest.schedule.timezone or 'UTC'})"
            if manifest.schedule
            else "none (triggered runs only)",
        ),
        ("triggers", triggers_summary(manifest) or "-"),
        ("tags", ", ".join(manifest.tags) or "-"),
    ]
    lines = [f"{name + ':':<11}{value}" for name, value in rows]
    lines.append("parameters:" if manifest.parameters else "parameters: none")
    for p in manifest.parameters:
        default = "required" if p.required else f"default {json.dumps(p.default)}"
        lines.append(f"  {p.name} ({p.type}, {default}){': ' + p.help if p.help else ''}")
    lines.append("steps:")
    width = max(len(step.name) for step in manifest.steps)
    for step in manifest.steps:
        where = f"  in foreach {step.foreach}" if step.foreach else ""
        after = f"  after {', '.join(step.parents)}" if step.parents else ""
        lines.append(f"  {step.name:<{width}}  {step.type}{after}{where}")
        lines.append(f"  {'':<{width}}    {step_details(manifest, step)}")
    return lines


def step_details(manifest: FlowManifest, step: StepSpec) -> str:
    """How one step runs: retries, timeout, resources and compute, in one line."""
    retries = f"retries {step.retries}"
    if step.retries and step.retry_delay_seconds is not None:
        retries += f" ({step.retry_delay_seconds} s apart)"
    timeout = f"timeout {step.timeout_seconds} s" if step.timeout_seconds else "no timeout"
    r = step.resources
    resources = f"cpu {r.cpu:g}, memory {r.memory_mb} MB, disk {r.disk_mb} MB"
    if r.gpu:
        resources += f", gpu {r.gpu} ({step.pod.gpu_vendor})"
    if manifest.compute.kind == "kubernetes":
        compute = f"kubernetes pod {step.pod.image or '(default image)'} in {step.pod.namespace}"
    else:
        compute = "local process on the worker"
    return f"{retries}; {timeout}; {resources}; {compute}"
