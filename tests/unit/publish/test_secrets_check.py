"""Which @environment names count as credentials, and the refusal's message."""

from __future__ import annotations

import pytest

from metaflow_airflow.errors import CompileError
from metaflow_airflow.manifest.models import StepSpec
from metaflow_airflow.publish.secrets_check import is_secret_name, refuse_plaintext_secrets

SECRET = [
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "GITHUB_TOKEN",
    "db_password",
    "MYSQL_PASSWD",
    "OPENAI_API_KEY",
    "STRIPE_APIKEY",
    "CLIENT_SECRET",
    "AZURE_STORAGE_ACCOUNT_KEY",
    "AZURE_STORAGE_CONNECTION_STRING",
    "SSH_PRIVATE_KEY",
    "HF_TOKEN",
    "HUGGING_FACE_HUB_TOKEN",
    "AZURE_CLIENT_SECRET",
]
NOT_SECRET = [
    "LOG_LEVEL",
    "TOKENIZERS_PARALLELISM",
    "AWS_DEFAULT_REGION",
    "PYTHONHASHSEED",
    "OMP_NUM_THREADS",
    "KEYWORDS",
]


@pytest.mark.parametrize("name", SECRET)
def test_credential_names(name: str) -> None:
    assert is_secret_name(name)


@pytest.mark.parametrize("name", NOT_SECRET)
def test_ordinary_names(name: str) -> None:
    assert not is_secret_name(name)


def steps(**env_by_step: dict[str, str]) -> list[StepSpec]:
    return [StepSpec(name=name, type="linear", env=env) for name, env in env_by_step.items()]


def test_refusal_names_every_step_and_variable() -> None:
    flow = steps(
        start={"API_TOKEN": "t", "LOG_LEVEL": "info"},
        train={"DB_PASSWORD": "p", "AWS_ACCESS_KEY_ID": "AKIA"},
        end={},
    )
    with pytest.raises(CompileError) as refused:
        refuse_plaintext_secrets(flow)
    message = str(refused.value)
    assert (
        "step 'start': API_TOKEN; step 'train': AWS_ACCESS_KEY_ID; step 'train': DB_PASSWORD"
        in message
    )
    assert "LOG_LEVEL" not in message
    assert "@secrets" in message and "Kubernetes secrets" in message
    assert "--allow-plaintext-env" in message
    # values are never repeated in the error (it is logged and shown)
    assert "AKIA" not in message


def test_opt_out_and_empty_values_pass() -> None:
    refuse_plaintext_secrets(steps(start={"API_TOKEN": "t"}), allow=True)
    refuse_plaintext_secrets(steps(start={"API_TOKEN": ""}))
