"""Opaque list cursors: a position in a DynamoDB query, never a tenant.

A cursor is URL-safe base64 of a small JSON object of strings (the key of
the last item returned). The tenant always comes from the caller, so a
cursor made by another tenant only moves a position inside the caller's
own partition.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from typing import Generic, TypeVar

from oms_webhooks.errors import ValidationFailed

T = TypeVar("T")


@dataclass(frozen=True)
class Page(Generic[T]):
    """One page of a list, in the list's order, and the next page's cursor (None at the end)."""

    items: list[T]
    next_cursor: str | None


#: Longest cursor value accepted, in characters.
MAX_CURSOR_CHARS = 512


def encode_cursor(position: dict[str, str]) -> str:
    """The cursor of ``position`` (field → string value)."""
    raw = json.dumps(position, separators=(",", ":"), sort_keys=True).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(
    cursor: str, fields: tuple[str, ...], *, max_value_chars: int = 256
) -> dict[str, str]:
    """The position in ``cursor``: exactly ``fields``, each a non-empty string.

    Raises:
        ValidationFailed: a cursor this API did not issue (400 naming ``cursor``).
    """
    try:
        if len(cursor) > MAX_CURSOR_CHARS:
            raise ValueError
        data = json.loads(base64.urlsafe_b64decode((cursor + "=" * (-len(cursor) % 4)).encode()))
        if not isinstance(data, dict) or set(data) != set(fields):
            raise ValueError
        if not all(isinstance(v, str) and 0 < len(v) <= max_value_chars for v in data.values()):
            raise ValueError
    except (ValueError, TypeError, UnicodeError, binascii.Error):
        raise ValidationFailed(
            "invalid cursor", {"cursor": ["not a cursor this API returned"]}
        ) from None
    return {k: str(v) for k, v in data.items()}
