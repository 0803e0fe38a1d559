"""The ``metaflow-airflow`` command: one click group, one module per subcommand."""

from __future__ import annotations

import gc
import logging
import sys
import traceback
from importlib import import_module

import click

from metaflow_airflow.errors import MetaflowAirflowError

# Subcommand -> (its module in this package, the command in it), imported when used: `publish`
# starts the flow process without first importing what the other commands need.
SUBCOMMANDS = {
    "publish": ("publish", "publish_command"),
    "list": ("list_flows", "list_command"),
    "schema": ("schema", "schema_command"),
    "show": ("show", "show_command"),
    "render": ("render", "render_command"),
    "mwaa-bundle": ("mwaa_bundle", "mwaa_bundle_command"),
    "history": ("history", "history_command"),
    "rollback": ("rollback", "rollback_command"),
    "delete": ("delete", "delete_command"),
    "validate": ("validate", "validate_command"),
    "trigger": ("trigger", "trigger_command"),
    "runs": ("runs", "runs_command"),
}


# Set by ``--verbose`` (or $METAFLOW_AIRFLOW_VERBOSE): an error also prints its traceback.
VERBOSE_ENV = "METAFLOW_AIRFLOW_VERBOSE"
_verbose = False


class LazyGroup(click.Group):
    """A click group whose subcommands are imported when they are looked up."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(SUBCOMMANDS)  # as click lists the commands of a group

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in SUBCOMMANDS:
            return None
        module, attribute = SUBCOMMANDS[cmd_name]
        command: click.Command = getattr(import_module(f".{module}", __name__), attribute)
        return command


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="metaflow-airflow")
@click.option(
    "--verbose",
    is_flag=True,
    envvar=VERBOSE_ENV,
    help=f"On an error, print its traceback too, and the store clients' log messages "
    f"(also ${VERBOSE_ENV}=1).",
)
def cli(verbose: bool) -> None:
    """Publish Metaflow flows to a manifest store that Airflow loads as DAGs.

    \b
    Examples:
      metaflow-airflow publish flow.py --store s3://bucket/flows --datastore s3
      metaflow-airflow list --store s3://bucket/flows --json
      metaflow-airflow show MyFlow          # store from $METAFLOW_AIRFLOW_STORE
      metaflow-airflow render MyFlow        # the DAG as Airflow's loader builds it
      metaflow-airflow mwaa-bundle build/mwaa --airflow-version 2.11.2
    """
    global _verbose
    _verbose = verbose
    _quiet_store_clients(verbose)


def _quiet_store_clients(verbose: bool) -> None:
    """A store client that logs a failure with its traceback (gcsfs) would print it before the
    command's one-line error: its loggers speak only under ``--verbose``."""
    from metaflow_airflow.store.clouds.registry import CLOUDS

    for name in (name for cloud in CLOUDS for name in cloud.noisy_loggers):
        logger = logging.getLogger(name)
        if verbose:
            logger.propagate = True
        else:
            logger.addHandler(logging.NullHandler())
            logger.propagate = False


def main() -> None:
    """Entry point: user mistakes end in one line on stderr and exit code 1, not a traceback."""
    try:
        _run()
    finally:
        # The collector's pass at exit would scan every object of the store's client only to
        # free memory that exiting frees anyway (docs/performance.md).
        gc.freeze()


def _run() -> None:
    try:
        cli.main(standalone_mode=False)
    except click.exceptions.Abort:
        sys.exit(1)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except MetaflowAirflowError as exc:
        _show_traceback(exc)
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)
    except Exception as exc:
        from pydantic import ValidationError  # imported by then if this is one of its errors

        if not isinstance(exc, ValidationError):
            raise
        _show_traceback(exc)
        first = exc.errors()[0]
        click.echo(f"error: {'.'.join(map(str, first['loc']))}: {first['msg']}", err=True)
        sys.exit(1)


def _show_traceback(exc: BaseException) -> None:
    """Under ``--verbose``, the traceback behind an error line (its causes included)."""
    if _verbose:
        traceback.print_exception(type(exc), exc, exc.__traceback__, file=sys.stderr)
