"""Signed manifests: HMAC-SHA256 over the stored bytes; unsigned, wrong-key and altered
manifests are refused with an error naming the manifest."""

from __future__ import annotations

from pathlib import Path

import pytest

from metaflow_airflow.errors import ManifestError, SignatureError, SigningKeyError
from metaflow_airflow.manifest.signing import (
    KEY_ENV,
    KEY_FILE_ENV,
    load_signing_key,
    sign,
    signature_path,
    verify,
)

KEY = b"k" * 32
OTHER_KEY = b"o" * 32
DATA = b'{\n  "dag_id": "Hello",\n  "steps": []\n}\n'
URL = "s3://bucket/flows/manifests/Hello.json"


def test_correct_signature_is_accepted() -> None:
    signature = sign(DATA, KEY)
    assert signature.startswith("hmac-sha256:") and len(signature) == len("hmac-sha256:") + 64
    verify(DATA, signature, KEY, url=URL)
    verify(DATA, signature.encode() + b"\n", KEY, url=URL)  # as read back from a sidecar


def test_unsigned_manifest_is_refused() -> None:
    with pytest.raises(SignatureError) as refused:
        verify(DATA, None, KEY, url=URL)
    assert str(refused.value) == f"{URL}: unsigned: no signature at {URL}.sig"
    assert isinstance(refused.value, ManifestError) and refused.value.url == URL


def test_wrong_key_is_refused() -> None:
    with pytest.raises(SignatureError, match=f"^{URL}: signature does not match"):
        verify(DATA, sign(DATA, OTHER_KEY), KEY, url=URL)


@pytest.mark.parametrize("position", [0, 5, len(DATA) // 2, len(DATA) - 1])
def test_one_changed_byte_is_refused(position: int) -> None:
    signature = sign(DATA, KEY)
    altered = bytearray(DATA)
    altered[position] ^= 0x01
    with pytest.raises(SignatureError, match="altered or signed with another key"):
        verify(bytes(altered), signature, KEY, url=URL)


@pytest.mark.parametrize("signature", ["", "garbage", "hmac-sha256:" + "0" * 64])
def test_malformed_signature_is_refused(signature: str) -> None:
    with pytest.raises(SignatureError):
        verify(DATA, signature, KEY, url=URL)


def test_sidecar_lives_next_to_the_manifest() -> None:
    assert signature_path(URL) == f"{URL}.sig"


@pytest.fixture
def no_key_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    monkeypatch.delenv(KEY_ENV, raising=False)
    monkeypatch.delenv(KEY_FILE_ENV, raising=False)
    return monkeypatch


def test_no_key_configured(no_key_env: pytest.MonkeyPatch) -> None:
    assert load_signing_key() is None


def test_key_from_env_file_or_source(no_key_env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    no_key_env.setenv(KEY_ENV, "a" * 64)
    assert load_signing_key() == b"a" * 64
    no_key_env.delenv(KEY_ENV)
    key_file = tmp_path / "signing.key"
    key_file.write_text("b" * 64 + "\n")
    no_key_env.setenv(KEY_FILE_ENV, str(key_file))
    assert load_signing_key() == b"b" * 64  # the file's trailing newline is not part of the key
    assert load_signing_key(lambda: b"c" * 32) == b"c" * 32  # a secrets backend wins
    assert load_signing_key(lambda: None) is None


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({KEY_ENV: "short"}, f"the signing key from {KEY_ENV} has 5 bytes; use at least 32"),
        ({KEY_ENV: "a" * 32, KEY_FILE_ENV: "/k"}, f"set either {KEY_ENV} or {KEY_FILE_ENV}"),
        ({KEY_FILE_ENV: "/no/such/key"}, "cannot read the signing key from /no/such/key"),
        ({KEY_ENV: ""}, f"{KEY_ENV} is set but empty"),
        ({KEY_ENV: "  "}, f"{KEY_ENV} is set but empty"),
    ],
)
def test_misconfigured_key_is_an_error(
    no_key_env: pytest.MonkeyPatch, env: dict[str, str], message: str
) -> None:
    for name, value in env.items():
        no_key_env.setenv(name, value)
    with pytest.raises(SigningKeyError, match="^" + message.replace("(", r"\(")):
        load_signing_key()
