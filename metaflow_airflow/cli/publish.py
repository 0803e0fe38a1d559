"""``metaflow-airflow publish FLOW.py``."""

from __future__ import annotations

import click

from ..publisher import PublishRequest, publish_flow
from .options import storage_options_option, store_option


@click.command(name="publish")
@click.argument("flow_file", type=click.Path(exists=True, dir_okay=False))
@store_option
@storage_options_option
@click.option(
    "--compute",
    type=click.Choice(["kubernetes", "local"]),
    default="kubernetes",
    show_default=True,
    help="Run steps as Kubernetes pods, or as processes on the Airflow worker.",
)
@click.option("--name", "dag_id", metavar="DAG_ID", help="DAG id (default: the flow's class name).")
@click.option("--image", help="Container image for Kubernetes compute (default: Metaflow's).")
@click.option("--namespace", default="default", show_default=True, help="Kubernetes namespace.")
@click.option("--datastore", type=click.Choice(["local", "s3", "azure", "gs"]),
              help="Metaflow datastore for code and artifacts (default: Metaflow's configuration).")
@click.option("--datastore-root", metavar="URL", help="Root of that datastore.")
@click.option("--metadata", type=click.Choice(["local", "service"]),
              help="Metaflow metadata provider (default: Metaflow's configuration).")
def publish_command(
    flow_file: str,
    store: str,
    storage_options: dict,
    compute: str,
    dag_id: str | None,
    image: str | None,
    namespace: str,
    datastore: str | None,
    datastore_root: str | None,
    metadata: str | None,
) -> None:
    """Compile FLOW_FILE, upload its code package, and publish its manifest.

    \b
    Examples:
      metaflow-airflow publish flow.py --store s3://bucket/flows --datastore s3
      metaflow-airflow publish flow.py --store file:///srv/flows --compute local --name nightly
    """
    metaflow_options = [
        f"--{name}={value}"
        for name, value in (
            ("datastore", datastore), ("datastore-root", datastore_root), ("metadata", metadata)
        )
        if value
    ]
    request = PublishRequest(
        store=store,
        storage_options=storage_options,
        compute=compute,
        dag_id=dag_id,
        image=image,
        namespace=namespace,
    )
    result = publish_flow(flow_file, request, metaflow_options=metaflow_options)
    click.echo(f"dag_id: {result.dag_id}")
    click.echo(f"manifest: {result.manifest_url}")
