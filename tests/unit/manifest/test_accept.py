"""``accept_manifest`` is the one gate between stored bytes and a DAG: the loader, its cache,
the store's reads, ``validate`` and ``list`` all refuse exactly what it refuses, with the
message it gives. Each refusal path, its message and the order of the checks."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from manifests import FOREACH
from pydantic import SecretStr

from metaflow_airflow.errors import ManifestError, SignatureError, SigningKeyError
from metaflow_airflow.manifest.accept import accept_manifest
from metaflow_airflow.manifest.models import SCHEMA_VERSION, FlowManifest
from metaflow_airflow.manifest.signing import (
    KEY_ENV,
    KEY_FILE_ENV,
    SignatureCheck,
    load_signing_key,
    sign,
    signature_check,
)
from metaflow_airflow.settings import Settings

URL = "s3://bucket/flows/manifests/F.json"
DATA = FOREACH.to_json().encode()
KEY = b"k" * 32
OTHER_KEY = b"o" * 32
SIGNED = SignatureCheck(KEY)
NO_KEY = SignatureCheck(None, "require_signed is set but no signing key is configured (...)")


def document(**changes: Any) -> dict[str, Any]:
    """The good manifest as a JSON object, with ``changes`` (``None`` removes a field)."""
    doc = json.loads(DATA)
    for name, value in changes.items():
        if value is None:
            del doc[name]
        else:
            doc[name] = value
    return doc


def encoded(doc: dict[str, Any]) -> bytes:
    return json.dumps(doc).encode()


def refusal(data: bytes | str | Exception, dag_id: str | None = "F", **kwargs: Any) -> str:
    """The detail of the ManifestError that ``accept_manifest`` raises, checking it names URL."""
    with pytest.raises(ManifestError) as refused:
        accept_manifest(data, URL, dag_id, **kwargs)
    assert refused.value.url == URL
    assert str(refused.value) == f"{URL}: {refused.value.detail}"
    return refused.value.detail


# --- what is accepted ------------------------------------------------------------------------


def test_a_good_manifest_is_accepted_as_published() -> None:
    """The bytes a publish writes come back as the same manifest."""
    accepted = accept_manifest(DATA, URL, "F")
    assert type(accepted) is FlowManifest
    assert accepted == FOREACH
    assert accepted.to_json().encode() == DATA


def test_text_is_accepted_like_bytes() -> None:
    assert accept_manifest(DATA.decode(), URL, "F") == accept_manifest(DATA, URL, "F")


def test_model_chooses_the_class_returned() -> None:
    """The loader's cache validates straight into its own subclass (no second parse)."""

    class Cached(FlowManifest):
        pass

    accepted = accept_manifest(DATA, URL, "F", model=Cached)
    assert type(accepted) is Cached
    assert accepted.model_dump() == FOREACH.model_dump()


def test_without_a_dag_id_the_file_name_is_not_checked() -> None:
    """``validate FILE...`` checks files that are not stored under a DAG id."""
    other = FOREACH.model_copy(update={"dag_id": "Other"}).to_json().encode()
    assert accept_manifest(other, URL, None).dag_id == "Other"


def test_signatures_are_ignored_unless_required() -> None:
    """An unsigned store keeps working whatever sits in a sidecar."""
    for signature in (None, b"garbage", sign(DATA, OTHER_KEY).encode(), OSError("denied")):
        assert accept_manifest(DATA, URL, "F", signature=signature) == FOREACH


def test_a_signed_manifest_is_accepted_with_its_key() -> None:
    signature = sign(DATA, KEY).encode()
    assert accept_manifest(DATA, URL, "F", signature=signature, signatures=SIGNED) == FOREACH
    # A sidecar written by hand ends with a newline.
    assert accept_manifest(DATA, URL, "F", signature=signature + b"\n", signatures=SIGNED)


# --- refusals, in the order they are checked -------------------------------------------------


def test_a_read_error_is_cannot_be_read() -> None:
    assert refusal(OSError("connection reset")) == "cannot be read: connection reset"


@pytest.mark.parametrize("signatures", [SIGNED, NO_KEY], ids=["with-key", "without-key"])
def test_a_read_error_beats_the_signature_check(signatures: SignatureCheck) -> None:
    """A manifest that could not be read says so, not that it is unsigned or that the key is
    missing: the operator fixes the store first."""
    detail = refusal(TimeoutError("no answer"), signature=None, signatures=signatures)
    assert detail == "cannot be read: no answer"


def test_without_a_usable_key_every_manifest_is_refused_with_the_problem() -> None:
    """Even a correctly signed one: a misconfigured key must not mean "accept everything"."""
    detail = refusal(DATA, signature=sign(DATA, KEY).encode(), signatures=NO_KEY)
    assert detail == NO_KEY.problem


@pytest.mark.parametrize(
    "signature", [None, FileNotFoundError("F.json.sig")], ids=["none", "not-found"]
)
def test_an_unsigned_manifest_is_refused_when_signatures_are_required(
    signature: bytes | Exception | None,
) -> None:
    with pytest.raises(SignatureError) as refused:
        accept_manifest(DATA, URL, "F", signature=signature, signatures=SIGNED)
    assert refused.value.detail == f"unsigned: no signature at {URL}.sig"


@pytest.mark.parametrize(
    "error", [PermissionError("denied"), TimeoutError("no answer"), OSError("reset")]
)
def test_a_sidecar_that_could_not_be_read_is_not_called_unsigned(error: Exception) -> None:
    """A failed read is worth retrying and is the store's fault; "unsigned" would send the
    operator looking for a tampered manifest."""
    detail = refusal(DATA, signature=error, signatures=SIGNED)
    assert detail == f"its signature cannot be read: {error}"


def test_an_unreadable_sidecar_is_refused_before_the_bytes_are_parsed() -> None:
    assert refusal(b"{not json", signature=OSError("reset"), signatures=SIGNED) == (
        "its signature cannot be read: reset"
    )


def test_a_missing_key_is_reported_before_an_unreadable_sidecar() -> None:
    """The key problem refuses every manifest; it is the one to fix first."""
    assert refusal(DATA, signature=OSError("reset"), signatures=NO_KEY) == NO_KEY.problem


@pytest.mark.parametrize(
    "data",
    [
        b"{not json",
        encoded(document(schema_version=SCHEMA_VERSION + 1)),
        encoded(document(flow_name=None)),
        FOREACH.model_copy(update={"dag_id": "Other"}).to_json().encode(),
    ],
    ids=["not-json", "newer-schema", "invalid", "other-dag-id"],
)
def test_a_bad_signature_is_refused_before_the_bytes_are_parsed(data: bytes) -> None:
    """Unsigned bytes are not even parsed: the signature is the first thing they must pass."""
    with pytest.raises(SignatureError) as refused:
        accept_manifest(data, URL, "F", signature=sign(data, OTHER_KEY).encode(), signatures=SIGNED)
    assert refused.value.detail == (
        "signature does not match: the manifest was altered or signed with another key"
    )


def test_a_correctly_signed_manifest_is_still_validated() -> None:
    """The signature vouches for who wrote the bytes, not that they are a manifest."""
    data = encoded(document(flow_name=None))
    detail = refusal(data, signature=sign(data, KEY).encode(), signatures=SIGNED)
    assert detail == "field flow_name: Field required"


def test_a_newer_schema_version_says_to_upgrade() -> None:
    detail = refusal(encoded(document(schema_version=SCHEMA_VERSION + 1)))
    assert detail == (
        f"field schema_version: {SCHEMA_VERSION + 1} is newer than this metaflow-airflow reads "
        f"({SCHEMA_VERSION}); upgrade metaflow-airflow where Airflow runs"
    )


def test_a_newer_schema_version_wins_over_the_fields_it_adds() -> None:
    """A manifest from a newer publisher has fields this version does not know: the reason to
    give is the version, not 'Extra inputs are not permitted'."""
    doc = document(schema_version=SCHEMA_VERSION + 5, flow_name=None)
    doc["a_future_field"] = {"x": 1}
    assert refusal(encoded(doc)).startswith(
        f"field schema_version: {SCHEMA_VERSION + 5} is newer than this metaflow-airflow reads"
    )


@pytest.mark.parametrize("version", [0, -1, "2", 1.5, None], ids=repr)
def test_other_bad_schema_versions_are_plain_field_errors(version: Any) -> None:
    """Only an integer above ours means "upgrade"; anything else is just invalid."""
    doc = document()
    doc["schema_version"] = version
    detail = refusal(encoded(doc))
    assert detail.startswith("field schema_version: ")
    assert "newer" not in detail


def test_a_boolean_schema_version_is_refused() -> None:
    assert refusal(encoded(document(schema_version=True))).startswith("field schema_version: ")


def test_a_missing_field_is_named() -> None:
    assert refusal(encoded(document(flow_name=None))) == "field flow_name: Field required"


def test_only_the_first_error_is_spelled_out_with_the_count_of_the_others() -> None:
    detail = refusal(encoded(document(flow_name=None, published_by=None, source_file=None)))
    assert detail == "field flow_name: Field required (and 2 more)"


def test_a_nested_field_is_named_by_its_path() -> None:
    doc = document()
    doc["steps"][1]["resources"]["cpu"] = 0
    assert refusal(encoded(doc)) == "field steps.1.resources.cpu: Input should be greater than 0"


def test_an_unknown_field_is_named() -> None:
    """A typo in a hand-edited manifest never passes silently."""
    doc = document()
    doc["flow_nmae"] = "F"
    assert refusal(encoded(doc)) == "field flow_nmae: Extra inputs are not permitted"


def test_an_error_of_the_whole_document_says_document() -> None:
    """The graph checks belong to no single field."""
    doc = document()
    doc["steps"] = [s for s in doc["steps"] if s["name"] != "end"]
    assert refusal(encoded(doc)) == (
        "field (document): Value error, steps.join: refers to unknown step 'end'"
    )


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", r"field \(document\): Invalid JSON: "),
        (b"{not json", r"field \(document\): Invalid JSON: "),
        (b"\xff\xfe{}", r"field \(document\): Invalid JSON: "),
        (DATA[: len(DATA) // 2], r"field \(document\): Invalid JSON: "),
        (b"[]", r"field \(document\): Input should be an object$"),
        (b"null", r"field \(document\): Input should be an object$"),
    ],
    ids=["empty", "not-json", "not-utf8", "truncated", "array", "null"],
)
def test_bytes_that_are_no_json_object(data: bytes, message: str) -> None:
    assert re.match(message, refusal(data))


def test_a_manifest_stored_under_another_name_is_refused() -> None:
    """``G.json`` holding a manifest that declares ``F`` would replace the DAG ``F`` (or be two
    DAGs with one id): the file name and the declared id must agree."""
    assert refusal(DATA, "G") == "field dag_id: 'F' does not match its file name 'G'"


def test_the_declared_dag_id_is_compared_not_the_flow_name() -> None:
    """Under @project the DAG id is ``project.branch.Flow``, not the flow's name."""
    qualified = FOREACH.model_copy(update={"dag_id": "proj.main.F"}).to_json().encode()
    assert accept_manifest(qualified, URL, "proj.main.F").flow_name == "F"
    detail = refusal(qualified, "F")
    assert detail == "field dag_id: 'proj.main.F' does not match its file name 'F'"


def test_the_dag_id_is_checked_after_the_signature() -> None:
    """A manifest signed by the publisher but copied under another name is still refused."""
    detail = refusal(DATA, "G", signature=sign(DATA, KEY).encode(), signatures=SIGNED)
    assert detail == "field dag_id: 'F' does not match its file name 'G'"


def test_refusals_are_manifest_errors_and_only_signatures_are_signature_errors() -> None:
    """Callers tell a tampered manifest from a broken one by the class."""
    with pytest.raises(ManifestError) as broken:
        accept_manifest(b"{}", URL, "F")
    assert not isinstance(broken.value, SignatureError)
    with pytest.raises(ManifestError) as unread:
        accept_manifest(OSError("x"), URL, "F", signatures=SIGNED)
    assert not isinstance(unread.value, SignatureError)


# --- what checks signatures for a reader that requires them -----------------------------------


@pytest.fixture
def key_env_set(monkeypatch: pytest.MonkeyPatch) -> None:
    """A usable key in the environment, which ``signature_check`` must not read."""
    monkeypatch.setenv(KEY_ENV, "e" * 64)
    monkeypatch.delenv(KEY_FILE_ENV, raising=False)


def test_signature_check_with_a_key_checks_with_it() -> None:
    assert signature_check(Settings(signing_key=SecretStr("s" * 32))) == SignatureCheck(b"s" * 32)


def test_signature_check_reads_only_the_settings_it_is_given(key_env_set: None) -> None:
    """The loader passes the settings it read once; a second look at the environment could
    check with a key the rest of the parse does not use."""
    check = signature_check(Settings())
    assert check.key is None
    assert check.problem == (
        f"require_signed is set but no signing key is configured ({KEY_ENV} or {KEY_FILE_ENV})"
    )


def test_signature_check_takes_the_key_file_of_its_settings(tmp_path: Path) -> None:
    path = tmp_path / "key"
    path.write_bytes(b"  " + b"f" * 40 + b"\n")
    assert signature_check(Settings(signing_key_file=path)) == SignatureCheck(b"f" * 40)


@pytest.mark.parametrize(
    ("settings", "problem"),
    [
        (
            Settings(signing_key_file=Path("/no/such/key")),
            "require_signed: cannot read the signing key from /no/such/key: ",
        ),
        (
            Settings(signing_key=SecretStr("a" * 32), signing_key_file=Path("/k")),
            f"require_signed: set either {KEY_ENV} or {KEY_FILE_ENV}, not both",
        ),
        (
            Settings(signing_key=SecretStr("a" * 31)),
            f"require_signed: the signing key from {KEY_ENV} has 31 bytes; use at least 32 ",
        ),
    ],
    ids=["unreadable", "both", "short"],
)
def test_an_unusable_key_becomes_the_problem_every_manifest_is_refused_with(
    settings: Settings, problem: str
) -> None:
    """A misconfigured key must not stop the parse: the check refuses with the reason."""
    check = signature_check(settings)
    assert check.key is None and check.problem.startswith(problem)
    assert refusal(DATA, signature=sign(DATA, b"a" * 32).encode(), signatures=check) == (
        check.problem
    )


def test_a_key_of_exactly_32_bytes_is_long_enough() -> None:
    """The minimum is the hash's length, inclusive."""
    assert load_signing_key(settings=Settings(signing_key=SecretStr("a" * 32))) == b"a" * 32
    assert load_signing_key(lambda: b"b" * 32) == b"b" * 32


def test_a_short_key_from_a_key_source_is_refused_naming_the_source() -> None:
    with pytest.raises(SigningKeyError, match="^the signing key from the key source has 31 bytes"):
        load_signing_key(lambda: b"b" * 31)


def test_a_signature_check_cannot_be_changed_once_made() -> None:
    """Shared by every reader of a parse: nobody may swap its key."""
    with pytest.raises(AttributeError):
        SIGNED.key = OTHER_KEY  # type: ignore[misc]
