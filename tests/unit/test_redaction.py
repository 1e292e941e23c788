"""Redacting a subscription's own secrets from what a partner echoed (issue 13, item 7)."""

from __future__ import annotations

import base64
import html
import json
from datetime import UTC, datetime
from urllib.parse import quote

import pytest

from oms_webhooks.delivery.request.redaction import (
    REDACTED,
    redact,
    redact_result,
    secret_strings,
    url_secrets,
)
from oms_webhooks.delivery.request.sender import AttemptResult, SendOptions, send

SECRET = 'p@ss/"w<o>rd&1'


@pytest.mark.parametrize(
    "spelling",
    [
        SECRET,
        json.dumps(SECRET)[1:-1],
        json.dumps(SECRET).replace("/", "\\/")[1:-1],
        html.escape(SECRET),
        quote(SECRET, safe=""),
    ],
)
def test_every_common_spelling_of_a_secret_is_redacted(spelling: str) -> None:
    assert redact(f"before {spelling} after", [SECRET]) == f"before {REDACTED} after"


def test_a_secret_cut_by_the_end_of_the_excerpt_is_redacted() -> None:
    assert redact("x-api-key: key-li", ["key-live-123"]) == f"x-api-key: {REDACTED}"
    assert redact("ends with key", ["key-live-123"]) == "ends with key"  # 3 chars: too short


def test_what_counts_as_a_secret() -> None:
    found = secret_strings(
        headers={
            "X-Api-Key": "k-123456",
            "Authorization": "Bearer tok-99999",
            "X-Plain": "plain-visible",
            "webhook-signature": "v1,abcd",
        },
        auth=("partner", "pw-secret"),
        signing_secrets=["whsec_QUJDREVGR0g=", None, "abc"],
    )
    basic = base64.b64encode(b"partner:pw-secret").decode()
    assert set(found) == {
        "k-123456",
        "Bearer tok-99999",
        "tok-99999",
        "pw-secret",
        "partner:pw-secret",
        basic,
        "whsec_QUJDREVGR0g=",
        "QUJDREVGR0g=",
    }  # not the plain header, not signatures, not a 3-character secret


def test_a_redacted_result_keeps_its_excerpt_within_the_limit() -> None:
    result = AttemptResult(
        at=datetime.now(UTC),
        status_code=500,
        error="boom key-1234",
        response_time_ms=1,
        response_excerpt="k=key-1234;" * 10,
    )
    redacted = redact_result(result, ["key-1234"], limit=64)
    assert "key-1234" not in redacted.response_excerpt + str(redacted.error)
    assert len(redacted.response_excerpt.encode()) <= 64
    assert redacted.status_code == 500


def test_what_of_a_target_url_counts_as_a_secret() -> None:
    # the query whole and each value (as sent and decoded), the fragment, the user info
    found = url_secrets("https://us%40r:p%40ss@h.example/path/seg?api_key=k%2F123&v=1#frag")
    assert set(found) == {
        "api_key=k%2F123&v=1",
        "k%2F123",
        "k/123",
        "frag",
        "us%40r:p%40ss",
        "us@r:p@ss",
        "p%40ss",
        "p@ss",
    }
    assert found == sorted(found, key=lambda s: (-len(s), s))  # longest first
    # the path, host and short values are public or too common to look for
    assert url_secrets("https://h.example/hook/secret-path?v=1") == []


def test_an_error_quoting_the_target_url_carries_no_query() -> None:
    # GIVEN a URL requests prepares but the sender refuses, whose error quotes it
    url = "ftp://h.example/hook?api_key=qs-s3cret-9d4e"
    # WHEN it is sent (refused before any connection)
    result = send(url, b"{}", {}, auth=None, options=SendOptions(allow_private=True))
    # THEN the error names the URL without its query value
    assert result.error is not None and result.error.startswith("invalid request")
    assert "qs-s3cret-9d4e" not in result.error and "ftp://h.example/hook?" in result.error
