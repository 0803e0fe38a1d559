"""What the Deployer, flow-command and `trigger` tests share on the topology: the environment of
a user's machine that deploys to this stack (its store and Metaflow datastore, the API login),
and a command run with it."""

from __future__ import annotations

import subprocess

from stack import Stack


def client_env(stack: Stack, **extra: str) -> dict[str, str]:
    """The stack's Metaflow configuration (S3 on moto) and the API settings of metaflow-airflow."""
    return {
        **stack.metaflow_env(),
        "METAFLOW_AIRFLOW_API_URL": stack.api_url,
        "METAFLOW_AIRFLOW_API_USERNAME": stack.api.user,
        "METAFLOW_AIRFLOW_API_PASSWORD": stack.api.password,
        **extra,
    }


def run(stack: Stack, argv: list[str], **extra: str) -> subprocess.CompletedProcess[str]:
    """``argv`` as a user would run it, with :func:`client_env`; the exit code is for the test."""
    return subprocess.run(  # noqa: PLW1510 (the caller asserts the exit code)
        argv,
        env=client_env(stack, **extra),
        cwd=stack.root,
        capture_output=True,
        text=True,
        timeout=600,
    )
