"""Signed manifests: an HMAC-SHA256 of a manifest's stored bytes, kept in a sidecar object.

Why: the store is a trust boundary. Whoever can write to it decides what every Airflow worker
runs (images, flow files, environment). With a key that only publishers and Airflow hold, the
loader in ``require_signed`` mode builds only manifests signed with that key.

Why a sidecar (``<dag_id>.json.sig`` next to ``<dag_id>.json``) rather than a field in the
manifest: the manifest model and its canonical JSON stay untouched, the signature covers the
exact bytes a reader gets (no re-serialization to agree on), and unsigned stores keep working.

The stable API, for the store and the loader:

- :func:`signature_path` — where the signature of a manifest lives (path or URL + ``.sig``).
- :func:`sign` / :func:`verify` — ``verify`` raises ``SignatureError`` (a ``ManifestError``
  naming the manifest URL) for unsigned, wrong-key or altered data.
- :func:`load_signing_key` — the key from the settings ``signing_key`` (the key text itself,
  ``METAFLOW_AIRFLOW_SIGNING_KEY``) or ``signing_key_file`` (a file holding it,
  ``METAFLOW_AIRFLOW_SIGNING_KEY_FILE``), or a :class:`KeySource` such as a secrets-backend
  lookup; ``None`` when none is configured.
- :func:`signature_check` — what checks signatures for a reader that requires them.

A store that versions manifests writes each immutable version's signature before it moves the
current pointer, so that a reader never sees a new manifest beside an old signature.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass
from typing import Protocol

from metaflow_airflow.errors import SignatureError, SigningKeyError
from metaflow_airflow.settings import Settings, env_var

KEY_ENV = env_var("signing_key")
KEY_FILE_ENV = env_var("signing_key_file")
SIGNATURE_SUFFIX = ".sig"
ALGORITHM = "hmac-sha256"
# HMAC-SHA256 is as strong as its key: refuse keys shorter than the hash.
MIN_KEY_BYTES = 32
ACTIVATION_FORMAT = "%Y%m%dT%H%M%S.%fZ"  # as version names: sorts in time order
MISMATCH = "signature does not match"
_ACTIVATION = re.compile(r"^\d{8}T\d{6}\.\d{6}Z$")


class KeySource(Protocol):
    """Returns the signing key, or ``None`` when signing is not configured (for a secrets backend,
    e.g. ``lambda: Variable.get("metaflow_airflow_signing_key").encode()``)."""

    def __call__(self) -> bytes | None: ...


def signature_path(manifest_path: str) -> str:
    """The sidecar of ``manifest_path`` (a path or URL): ``.../<dag_id>.json.sig``."""
    return manifest_path + SIGNATURE_SUFFIX


def sign(data: bytes, key: bytes) -> str:
    """The signature of ``data`` alone: ``hmac-sha256:<64 hex digits>`` (as publish wrote
    before activations; still accepted, its activation is the manifest's ``published_at``)."""
    return f"{ALGORITHM}:{hmac.new(key, data, hashlib.sha256).hexdigest()}"


def sign_activation(data: bytes, key: bytes, activated: str) -> str:
    """The signature of ``data`` made current at ``activated`` (a UTC time stamp as version
    names carry: ``20261122T101500.123456Z``): ``hmac-sha256:<activated>:<64 hex digits>``.
    The loader never accepts a manifest whose activation is older than the newest it has
    accepted for that DAG, so an old signed version copied back is refused."""
    statement = b"metaflow-airflow activation " + activated.encode() + b"\n" + data
    return f"{ALGORITHM}:{activated}:{hmac.new(key, statement, hashlib.sha256).hexdigest()}"


def activation_of(line: str) -> str:
    """The activation a signature line states ("" for a signature of the bytes alone)."""
    parts = line.strip().split(":")
    return parts[1] if len(parts) == 3 and _ACTIVATION.match(parts[1]) else ""


def verify(data: bytes, signature: str | bytes | None, key: bytes, *, url: str = "manifest") -> str:
    """Accept ``data`` only if a line of the ``signature`` sidecar signs it under ``key``, and
    return that line's activation (the newest, if several do; "" for a signature of the bytes
    alone); otherwise raise :class:`SignatureError` naming ``url`` and the reason. A sidecar
    holds several lines while a publish moves the pointer (the old one's and the new one's)."""
    if signature is None:
        raise SignatureError(url, f"unsigned: no signature at {signature_path(url)}")
    if isinstance(signature, bytes):
        signature = signature.decode("utf-8", errors="replace")
    matching = []
    for line in signature.split():
        activated = activation_of(line)
        expected = sign_activation(data, key, activated) if activated else sign(data, key)
        if hmac.compare_digest(expected.encode(), line.encode()):
            matching.append(activated)
    if not matching:
        raise SignatureError(
            url, f"{MISMATCH}: the manifest was altered or signed with another key"
        )
    return max(matching)


def load_signing_key(
    source: KeySource | None = None, settings: Settings | None = None
) -> bytes | None:
    """The signing key from ``source`` if given, else from ``settings`` (by default the
    environment's now); ``None`` if unset.

    Raises :class:`SigningKeyError` when both settings are set, the file is unreadable, or the
    key is shorter than 32 bytes."""
    if source is not None:
        key, origin = source(), "the key source"
    else:
        settings = settings or Settings.from_environment()
        secret, path = settings.signing_key, settings.signing_key_file
        text = secret.get_secret_value() if secret else ""
        if secret is not None and not text.strip():  # e.g. a secret that did not resolve
            raise SigningKeyError(
                f"{KEY_ENV} is set but empty: give it the key, or unset it to publish unsigned"
            )
        if text and path:
            raise SigningKeyError(f"set either {KEY_ENV} or {KEY_FILE_ENV}, not both")
        if path:
            try:
                key, origin = path.read_bytes().strip(), str(path)
            except OSError as exc:
                raise SigningKeyError(f"cannot read the signing key from {path}: {exc}") from exc
        else:
            key, origin = (text.encode() if text else None), KEY_ENV
    if key is not None and len(key) < MIN_KEY_BYTES:
        raise SigningKeyError(
            f"the signing key from {origin} has {len(key)} bytes; use at least {MIN_KEY_BYTES} "
            "(python -c 'import secrets; print(secrets.token_hex(32))')"
        )
    return key


@dataclass(frozen=True)
class SignatureCheck:
    """How a reader that requires signatures checks them: with ``key``, or, when the key is
    missing or unusable, by refusing every manifest with ``problem``."""

    key: bytes | None
    problem: str = ""


def signature_check(settings: Settings) -> SignatureCheck:
    """The check of a reader that requires signatures, under ``settings``."""
    try:
        key = load_signing_key(settings=settings)
    except SigningKeyError as exc:
        return SignatureCheck(None, f"require_signed: {exc}")
    if key is None:
        return SignatureCheck(
            None,
            f"require_signed is set but no signing key is configured ({KEY_ENV} or {KEY_FILE_ENV})",
        )
    return SignatureCheck(key)
