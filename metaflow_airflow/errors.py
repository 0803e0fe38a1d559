"""Exceptions raised by metaflow-airflow.

All of them derive from :class:`MetaflowAirflowError`, so callers can catch one type::

    MetaflowAirflowError
    ├── CompileError      a flow cannot be turned into a manifest (names the step and the reason)
    ├── PublishError      packaging or uploading failed after a successful compile
    ├── StoreError        the manifest store cannot be listed, read or written
    ├── SigningKeyError   the manifest signing key is misconfigured (unreadable, too short)
    ├── ManifestError     a stored manifest is not valid (names the manifest URL and the field)
    │   └── SignatureError    its signature is missing or does not match (``require_signed``)
    ├── AirflowApiError   Airflow's REST API is unreachable, refused the call, or lacks the DAG
    └── ParameterError    a run parameter the flow does not have, or a value of the wrong type
"""

from __future__ import annotations


class MetaflowAirflowError(Exception):
    """Root of every error this package raises on purpose."""


class CompileError(MetaflowAirflowError):
    """The flow uses something that cannot run on Airflow, or is not a valid flow."""


class PublishError(MetaflowAirflowError):
    """Publishing failed after the flow compiled (packaging, upload, or the flow process)."""


class StoreError(MetaflowAirflowError):
    """The manifest store is unreachable or refused an operation."""


class ManifestError(MetaflowAirflowError):
    """A manifest could not be parsed or validated."""

    def __init__(self, url: str, detail: str) -> None:
        super().__init__(f"{url}: {detail}")
        self.url = url
        self.detail = detail


class SignatureError(ManifestError):
    """A manifest is unsigned, or its signature does not match its bytes under the key."""


class SigningKeyError(MetaflowAirflowError):
    """The signing key is configured but unusable (both sources set, unreadable, too short)."""


class AirflowApiError(MetaflowAirflowError):
    """Airflow's REST API cannot be reached, refused a call (401, 403...), or has no such DAG."""


class ParameterError(MetaflowAirflowError):
    """A run parameter that the published flow does not have, or a value of the wrong type:
    refused before anything is sent to Airflow."""
