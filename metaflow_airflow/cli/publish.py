"""``metaflow-airflow publish FLOW.py``."""

from __future__ import annotations

import click

from metaflow_airflow.cli.options import storage_options_option, store_option
from metaflow_airflow.publish.publisher import PublishRequest, publish_flow
from metaflow_airflow.publish.support import refuse_unsupported_with


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
@click.option("--image", help="Default container image for Kubernetes compute.")
@click.option("--tag", "tags", multiple=True, help="DAG tag and Metaflow run tag (repeatable).")
@click.option(
    "--with",
    "with_decorators",
    multiple=True,
    metavar="DECORATOR",
    help="Add a step decorator to every step, e.g. 'retry:times=3' (repeatable).",
)
@click.option(
    "--max-workers",
    type=click.IntRange(min=1),
    help="Concurrent tasks of each foreach body step within one run.",
)
@click.option("--worker-pool", "pool", help="Airflow pool for every task.")
@click.option(
    "--is-paused-upon-creation",
    is_flag=True,
    default=None,
    help="The DAG starts paused when Airflow first sees it.",
)
@click.option("--branch", help="@project branch to publish to.")
@click.option("--production", is_flag=True, help="Publish to the @project production branch.")
@click.option(
    "--authorize",
    metavar="TOKEN",
    help="Production token that authorizes taking over another user's deployment.",
)
@click.option(
    "--generate-new-token", is_flag=True, help="Start a new production namespace for this DAG."
)
@click.option(
    "--replace",
    is_flag=True,
    help="Publish even if the DAG id belongs to another flow (another flow class or file "
    "name), replacing it.",
)
@click.option(
    "--allow-plaintext-env",
    is_flag=True,
    help="Publish even if @environment sets variables that look like credentials "
    "(*SECRET*, *TOKEN*, *PASSWORD*, AWS keys...); they end up in the manifest.",
)
@click.option(
    "--datastore",
    type=click.Choice(["local", "s3", "azure", "gs"]),
    help="Metaflow datastore for code and artifacts (default: Metaflow's configuration).",
)
@click.option("--datastore-root", metavar="URL", help="Root of that datastore.")
@click.option(
    "--metadata",
    type=click.Choice(["local", "service"]),
    help="Metaflow metadata provider (default: Metaflow's configuration).",
)
def publish_command(
    flow_file: str,
    with_decorators: tuple[str, ...],
    branch: str | None,
    production: bool,
    datastore: str | None,
    datastore_root: str | None,
    metadata: str | None,
    **request: object,
) -> None:
    """Compile FLOW_FILE, upload its code package, and publish its manifest.

    \b
    Examples:
      metaflow-airflow publish flow.py --store s3://bucket/flows --datastore s3
      metaflow-airflow publish flow.py --store file:///srv/flows --compute local --name nightly
      metaflow-airflow publish flow.py --with retry --tag team:ml --max-workers 8
    """
    refuse_unsupported_with(with_decorators)
    metaflow_options = [f"--with={deco}" for deco in with_decorators]
    metaflow_options += [
        f"--{name}={value}"
        for name, value in (
            ("datastore", datastore),
            ("datastore-root", datastore_root),
            ("metadata", metadata),
            ("branch", branch),
        )
        if value
    ]
    if production:
        metaflow_options.append("--production")
    result = publish_flow(
        flow_file,
        PublishRequest(**request),
        metaflow_options=metaflow_options,
        progress=lambda line: click.echo(line, err=True),
    )
    for warning in result.warnings:
        click.echo(f"warning: {warning}", err=True)
    click.echo(f"dag_id: {result.dag_id}")
    click.echo(f"manifest: {result.manifest_url}")
    if result.unchanged_version:
        click.echo(f"unchanged (version {result.unchanged_version})")
    if result.signature_url:
        click.echo(f"signature: {result.signature_url}")
