"""Retry-After parsing (issue 13, item 1): every value read safely, never an exception."""

from __future__ import annotations

from datetime import UTC, datetime
from email.utils import format_datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from oms_webhooks.delivery.retry.retry_after import MAX_SECONDS, parse_retry_after

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC).timestamp()


def _date(seconds_from_now: float) -> str:
    return format_datetime(datetime.fromtimestamp(NOW + seconds_from_now, UTC), usegmt=True)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("120", 120.0),
        ("  7\t", 7.0),
        ("0", 0.0),
        ("0005", 5.0),
        ("99999999999999999999999999999999", float(MAX_SECONDS)),  # huge: clamped
        ("9" * 5000, float(MAX_SECONDS)),  # more digits than int() takes by default
        (_date(90), 90.0),
        (_date(-3600), 0.0),  # a date in the past: no wait
        ("Sunday, 06-Nov-94 08:49:37 GMT", 0.0),  # RFC 850 form
        ("Sun Nov  6 08:49:37 1994", 0.0),  # asctime form
        ("120, 120", 120.0),  # the same value twice (a proxy repeating the field)
        (f"{_date(30)}, {_date(30)}", 30.0),
    ],
)
def test_valid_values(value: str, expected: float) -> None:
    assert parse_retry_after(value, now=NOW) == pytest.approx(expected)


@pytest.mark.parametrize(
    "value",
    [
        None,
        "",
        "   ",
        "-5",
        "+5",
        "1.5",
        "1e3",
        "0x10",
        "²",  # isdigit() is true, int() refuses it
        "٣",  # Arabic-Indic three: int() takes it, RFC 9110 does not
        "٣".encode().decode("latin-1"),  # the same bytes as http.client decodes them
        "１２",  # fullwidth digits
        "soon",
        "120 seconds",
        "120, 60",  # two different values
        f"{_date(30)}, 5",
        "Wed, 31 Feb 2027 07:28:00 GMT",  # no such day
        "Wed, 21 Oct 2027 99:99:99 GMT",
        "Wed, 21 Oct 99999999999999999 07:28:00 GMT",  # overflows a C int
        "21 Oct 2027 07:28:00",  # not one of the three HTTP-date forms
        "Mon",
        ",",
        "\x00",
        "x" * 10_000,
    ],
)
def test_unusable_values_are_ignored(value: str | None) -> None:
    assert parse_retry_after(value, now=NOW) is None


@given(value=st.text() | st.binary().map(lambda b: b.decode("latin-1")), now=st.floats())
def test_never_raises_and_stays_in_range(value: str, now: float) -> None:
    seconds = parse_retry_after(value, now=now)
    assert seconds is None or 0.0 <= seconds <= MAX_SECONDS


@given(
    seconds=st.integers(min_value=0, max_value=10**40),
    padding=st.sampled_from(["", " ", "\t"]),
)
def test_delay_seconds_are_read_and_clamped(seconds: int, padding: str) -> None:
    assert parse_retry_after(f"{padding}{seconds}{padding}", now=NOW) == min(seconds, MAX_SECONDS)
