"""The ``metaflow-airflow`` command: one click group, one module per subcommand."""

from __future__ import annotations

import sys

import click
from pydantic import ValidationError

from ..errors import MetaflowAirflowError
from .delete import delete_command
from .history import history_command
from .list_flows import list_command
from .mwaa_bundle import mwaa_bundle_command
from .publish import publish_command
from .render import render_command
from .rollback import rollback_command
from .schema import schema_command
from .show import show_command
from .validate import validate_command


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="metaflow-airflow")
def cli() -> None:
    """Publish Metaflow flows to a manifest store that Airflow loads as DAGs.

    \b
    Examples:
      metaflow-airflow publish flow.py --store s3://bucket/flows --datastore s3
      metaflow-airflow list --store s3://bucket/flows --json
      metaflow-airflow show MyFlow          # store from $METAFLOW_AIRFLOW_STORE
      metaflow-airflow render MyFlow        # the DAG as Airflow's loader builds it
      metaflow-airflow mwaa-bundle build/mwaa --airflow-version 2.11.2
    """


cli.add_command(publish_command)
cli.add_command(list_command)
cli.add_command(schema_command)
cli.add_command(show_command)
cli.add_command(render_command)
cli.add_command(mwaa_bundle_command)
cli.add_command(history_command)
cli.add_command(rollback_command)
cli.add_command(delete_command)
cli.add_command(validate_command)


def main() -> None:
    """Entry point: user mistakes end in one line on stderr and exit code 1, not a traceback."""
    try:
        cli.main(standalone_mode=False)
    except click.exceptions.Abort:
        sys.exit(1)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except MetaflowAirflowError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)
    except ValidationError as exc:
        first = exc.errors()[0]
        click.echo(f"error: {'.'.join(map(str, first['loc']))}: {first['msg']}", err=True)
        sys.exit(1)
