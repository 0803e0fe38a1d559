"""The ``metaflow-airflow`` command: one click group, one module per subcommand."""

from __future__ import annotations

import sys

import click
from pydantic import ValidationError

from ..errors import MetaflowAirflowError
from .list_flows import list_command
from .publish import publish_command
from .schema import schema_command


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="metaflow-airflow")
def cli() -> None:
    """Publish Metaflow flows to a manifest store that Airflow loads as DAGs."""


cli.add_command(publish_command)
cli.add_command(list_command)
cli.add_command(schema_command)


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
