"""Refuse credentials written in plain text into a flow's ``@environment``.

A manifest is plain JSON in an object store that every Airflow parser, worker and store reader can
read, and Airflow shows a task's environment in its UI: a secret in ``@environment`` leaks to all
of them. Metaflow's ``@secrets`` (fetched from a secrets manager when the task starts) and
Kubernetes secrets (``@kubernetes(secrets=[...])``) keep the value out of the manifest.
"""

from __future__ import annotations

from collections.abc import Iterable
from fnmatch import fnmatchcase

from metaflow_airflow.errors import CompileError
from metaflow_airflow.manifest.models import StepSpec

# Variable names (upper-cased) that hold credentials.
SECRET_NAME_PATTERNS = (
    "*SECRET*",
    "*TOKEN*",
    "*PASSWORD*",
    "*PASSWD*",
    "*API_KEY*",
    "*APIKEY*",
    "*PRIVATE_KEY*",
    "*ACCESS_KEY*",  # AWS_ACCESS_KEY_ID and friends
    "*ACCOUNT_KEY*",  # AZURE_STORAGE_ACCOUNT_KEY
    "*CONNECTION_STRING*",  # Azure connection strings embed the account key
)
# Names that match a pattern but are known settings, not credentials.
NOT_SECRETS = frozenset({"TOKENIZERS_PARALLELISM"})


def is_secret_name(name: str) -> bool:
    """Whether an environment variable called ``name`` looks like it holds a credential."""
    upper = name.upper()
    return upper not in NOT_SECRETS and any(fnmatchcase(upper, p) for p in SECRET_NAME_PATTERNS)


def refuse_plaintext_secrets(steps: Iterable[StepSpec], *, allow: bool = False) -> None:
    """Raise :class:`CompileError` naming every step and variable whose ``@environment`` value
    looks like a credential, unless ``allow`` (``--allow-plaintext-env``). Empty values pass."""
    if allow:
        return
    found = [
        f"step {step.name!r}: {name}"
        for step in steps
        for name, value in sorted(step.env.items())
        if value and is_secret_name(name)
    ]
    if found:
        raise CompileError(
            "plaintext secrets in @environment would be stored in the manifest and shown by "
            f"Airflow ({'; '.join(found)}): use @secrets (a secrets manager) or Kubernetes "
            "secrets (@kubernetes(secrets=[...])) instead, or publish with "
            "--allow-plaintext-env if these values are not secret"
        )
