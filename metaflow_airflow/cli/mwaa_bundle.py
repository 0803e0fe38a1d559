"""``metaflow-airflow mwaa-bundle OUT_DIR``."""

from __future__ import annotations

from pathlib import Path

import click

DEFAULT_AIRFLOW = "3.3.1"  # the newest Amazon MWAA image


@click.command(name="mwaa-bundle")
@click.argument("out_dir", type=click.Path(file_okay=False, path_type=Path))
@click.option(
    "--airflow-version",
    default=DEFAULT_AIRFLOW,
    show_default=True,
    help="The MWAA environment's Airflow version.",
)
@click.option(
    "--python-version",
    metavar="X.Y",
    help="The environment's Python (default: 3.11 for Airflow 2, 3.12 for Airflow 3).",
)
@click.option(
    "--resolved-as-of",
    metavar="YYYY-MM-DD",
    help="Resolve versions as of this date (default: a day after the Airflow release "
    "was published, close to its constraints file).",
)
@click.option(
    "--project-dir",
    type=click.Path(file_okay=False, exists=True, path_type=Path),
    help="metaflow-airflow's source checkout (default: the one running this command).",
)
def mwaa_bundle_command(
    out_dir: Path,
    airflow_version: str,
    python_version: str | None,
    resolved_as_of: str | None,
    project_dir: Path | None,
) -> None:
    """Write an Amazon MWAA bundle to OUT_DIR: requirements.txt, plugins.zip (wheels of
    metaflow-airflow and everything MWAA's image lacks, for offline installs),
    dags/dags_loader.py and a README. Needs network access to PyPI while building.

    \b
    Examples:
      metaflow-airflow mwaa-bundle build/mwaa
      metaflow-airflow mwaa-bundle build/mwaa-2.11 --airflow-version 2.11.2
      aws s3 cp build/mwaa/plugins.zip s3://my-mwaa-bucket/plugins.zip
    """
    from metaflow_airflow.mwaa.bundle import build_bundle

    bundle = build_bundle(
        out_dir,
        airflow_version,
        python_version=python_version,
        resolved_as_of=resolved_as_of,
        project_dir=project_dir,
        progress=lambda line: click.echo(line, err=True),
    )
    click.echo(f"requirements: {bundle.requirements}")
    click.echo(f"plugins: {bundle.plugins_zip} ({len(bundle.wheels)} wheels)")
    click.echo(f"dags: {bundle.out_dir / 'dags' / 'dags_loader.py'}")
