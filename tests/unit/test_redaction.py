"""Redacting a subscription's own secrets from what a partner echoed (issue 13, item 7)."""

from __future__ import annotations

import base64
import html
import json
from datetime import UTC, datetime
from urllib.parse import quote

import pytest

from oms_webhooks.delivery.request.redaction import REDACTED, redact, redact_result, secret_strings
from oms_webhooks.delivery.request.sender import AttemptResult

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
