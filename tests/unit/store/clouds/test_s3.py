"""The S3 client's fast timestamp parser gives what botocore's own parser gives, for the formats
S3 sends (ISO 8601 in listings, HTTP dates in headers) and for anything else."""

from __future__ import annotations

from datetime import datetime, timezone
from email.utils import format_datetime

import pytest
from botocore.utils import parse_timestamp as botocore_parse_timestamp
from hypothesis import given
from hypothesis import strategies as st

from metaflow_airflow.store.clouds.s3 import parse_timestamp

moments = st.datetimes(
    min_value=datetime(1970, 1, 2), max_value=datetime(2999, 12, 31), timezones=st.just(timezone.utc)
)


@given(moments)
def test_listing_timestamps_match_botocore(moment: datetime):
    for text in (
        moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z",
        moment.strftime("%Y-%m-%dT%H:%M:%SZ"),
        moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
    ):
        assert parse_timestamp(text) == botocore_parse_timestamp(text), text


@given(moments)
def test_header_dates_match_botocore(moment: datetime):
    text = format_datetime(moment.replace(microsecond=0), usegmt=True)
    parsed = parse_timestamp(text)
    assert parsed == botocore_parse_timestamp(text)
    assert parsed.tzinfo is not None


@pytest.mark.parametrize(
    "value", ["1700000000", 1700000000, "Sun, 22 Nov 2026 10:42:39 +0100", "2026-11-22T10:42:39"]
)
def test_other_forms_go_to_botocore(value):
    assert parse_timestamp(value) == botocore_parse_timestamp(value)


@pytest.mark.parametrize("value", ["garbageZ", "not a date GMT", "2026-13-45T00:00:00Z"])
def test_bad_values_fail_as_in_botocore(value):
    with pytest.raises(ValueError) as ours:
        parse_timestamp(value)
    with pytest.raises(ValueError) as theirs:
        botocore_parse_timestamp(value)
    assert str(ours.value) == str(theirs.value)
