"""A partner's ``Retry-After`` header, read safely: seconds to wait, or None.

RFC 9110 §10.2.3: ``Retry-After = HTTP-date / delay-seconds``, where
``delay-seconds = 1*DIGIT`` (ASCII digits only, RFC 5234 §B.1) and
``HTTP-date`` is an IMF-fixdate (``Sun, 06 Nov 1994 08:49:37 GMT``) or one of
the two obsolete forms recipients must still read (RFC 850
``Sunday, 06-Nov-94 08:49:37 GMT`` and asctime ``Sun Nov  6 08:49:37 1994``).

Partners send anything: negative or fractional numbers, digits of other
scripts (``"٣"``, ``"²"``, which ``str.isdigit`` accepts and ``int`` may
refuse), dates in the past or the year 9999, garbage, or the header twice
(``requests`` joins repeated fields as ``"a, b"``). :func:`parse_retry_after`
is total: it never raises, and answers None for every value that is not one
of the forms above, so the caller falls back to the subscription's countdown.
A date in the past means 0 seconds. Values beyond :data:`MAX_SECONDS` are
clamped to it (the dispatcher caps them further, DESIGN §4: "honoured within
the schedule's limits").

Repeated headers: ``Retry-After`` is a singleton field (RFC 9110 §5.3 allows
a list only where the field's grammar has one); a repetition of one value
(as a proxy may add) is that value, differing values are ignored.
"""

from __future__ import annotations

import re
from datetime import UTC
from email.utils import parsedate_to_datetime
from typing import Final

__all__ = ["MAX_SECONDS", "parse_retry_after"]

#: The longest wait this module reports, in seconds (about 31 years: larger is clamped).
MAX_SECONDS: Final = 999_999_999
#: ASCII digits only: ``[0-9]`` in a ``str`` pattern, unlike ``\d``, is ASCII.
_DELAY_SECONDS: Final = re.compile(r"[0-9]+")
#: The three HTTP-date forms (a numeric zone is tolerated in place of GMT).
_HTTP_DATE: Final = re.compile(
    r"[A-Za-z]{3}, [0-9]{1,2} [A-Za-z]{3} [0-9]{4} [0-9]{2}:[0-9]{2}:[0-9]{2}"
    r" (?:GMT|UTC|[+-][0-9]{4})"
    r"|[A-Za-z]{6,9}, [0-9]{2}-[A-Za-z]{3}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2} GMT"
    r"|[A-Za-z]{3} [A-Za-z]{3} [ 0-9][0-9] [0-9]{2}:[0-9]{2}:[0-9]{2} [0-9]{4}"
)
#: Day names that start an IMF-fixdate or RFC 850 date (the part before its comma).
_DAY_NAMES: Final = frozenset(
    {"mon", "tue", "wed", "thu", "fri", "sat", "sun"}
    | {"monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"}
)
#: Longest header value looked at; anything longer is not a Retry-After value.
_MAX_CHARS: Final = 256


def _one_value(text: str, now: float) -> float | None:
    """Seconds of one ``Retry-After`` value (already stripped), or None."""
    if _DELAY_SECONDS.fullmatch(text):
        digits = text.lstrip("0") or "0"
        return float(MAX_SECONDS) if len(digits) > 9 else float(min(int(digits), MAX_SECONDS))
    if not _HTTP_DATE.fullmatch(text):
        return None
    try:
        when = parsedate_to_datetime(text)
    except (ValueError, TypeError, OverflowError, IndexError, AttributeError):
        return None
    if when.tzinfo is None:  # asctime has no zone: HTTP dates are UTC (RFC 9110 §5.6.7)
        when = when.replace(tzinfo=UTC)
    try:
        seconds = when.timestamp() - now
    except (OverflowError, ValueError, OSError):
        return None
    return min(max(0.0, seconds), float(MAX_SECONDS))


def _values(text: str) -> list[str] | None:
    """The values of a possibly comma-joined field, keeping a date's own comma; None if empty."""
    parts = [part.strip() for part in text.split(",")]
    values: list[str] = []
    index = 0
    while index < len(parts):
        part = parts[index]
        if part.lower() in _DAY_NAMES and index + 1 < len(parts):
            values.append(f"{part}, {parts[index + 1]}")
            index += 2
            continue
        values.append(part)
        index += 1
    return values if all(values) else None


def parse_retry_after(value: str | None, *, now: float) -> float | None:
    """Seconds a ``Retry-After`` header asks to wait, or None if absent or unusable.

    Args:
        value: the raw header value as the HTTP client decoded it (Latin-1
            for bytes over 0x7F), repeated fields joined by ``", "``; None
            when the header is absent.
        now: the current time, Unix seconds (for HTTP dates).

    Returns:
        A float in ``[0, MAX_SECONDS]`` (a past date is 0), or None for
        anything else: empty, negative, fractional, non-ASCII digits, an
        impossible date, garbage, or repeated fields that disagree.
        Never raises.

    >>> parse_retry_after("120", now=0.0)
    120.0
    >>> parse_retry_after("-1", now=0.0) is None, parse_retry_after("1.5", now=0.0) is None
    (True, True)
    >>> parse_retry_after("Thu, 01 Jan 1970 00:02:00 GMT", now=60.0)
    60.0
    """
    if not isinstance(value, str):
        return None
    text = value.strip()
    if not text or not text.isascii():
        return None
    if _DELAY_SECONDS.fullmatch(text):  # however many digits
        return _one_value(text, now)
    if len(text) > _MAX_CHARS:
        return None
    values = _values(text)
    if not values or len(set(values)) != 1:
        return None
    return _one_value(values[0], now)
