"""Signature headers (DESIGN §4), checked with the partners' own verifier.

The Standard Webhooks headers are verified by the ``standardwebhooks``
library (what partners use); the whisperer signature by an independent
recomputation. The library checks ``webhook-timestamp`` against now (5 min
tolerance), so every test signs with the current time.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from oms_webhooks.delivery.request.envelope import build_envelope
from oms_webhooks.delivery.request.signing import (
    signature_headers,
    standard_key,
    standard_signature,
    standard_signatures,
    whisperer_signature,
)

WHSEC = "whsec_" + base64.b64encode(b"sixteen byte key" * 2).decode()
PLAIN = "plain-secret-ünïcode"
BODY = build_envelope(
    event_type="package.created",
    delivery_uuid="0123456789abcdef0123456789abcdef",
    event_time="2024-05-01T12:00:00Z",
    payload={"package": {"id": "P-1", "weight_g": 1200}, "note": "Grüße"},
)
MSG_ID = "0123456789abcdef0123456789abcdef"


def _headers(secret: str | None, body: bytes = BODY, msg_id: str = MSG_ID) -> dict[str, str]:
    return signature_headers(
        secret=secret, msg_id=msg_id, timestamp=int(time.time()), body=body, event_type="t.e"
    )


def test_whsec_secret_verifies_with_library_as_is() -> None:
    # GIVEN a whsec_ secret  WHEN we sign  THEN the library verifies with the secret unchanged
    assert Webhook(WHSEC).verify(BODY, _headers(WHSEC)) == json.loads(BODY)


def test_plain_secret_verifies_with_library_as_base64() -> None:
    key = base64.b64encode(PLAIN.encode()).decode()
    assert Webhook(key).verify(BODY, _headers(PLAIN)) == json.loads(BODY)


def test_whisperer_signature_is_hex_hmac_of_body_with_secret_as_given() -> None:
    for secret in (WHSEC, PLAIN):
        expected = hmac.new(secret.encode("utf-8"), BODY, hashlib.sha256).hexdigest()
        assert _headers(secret)["X-Whisperer-Signature"] == f"sha256={expected}"
        assert whisperer_signature(secret, BODY) == f"sha256={expected}"


def test_headers_with_secret() -> None:
    headers = _headers(WHSEC)
    assert list(headers) == [
        "X-Whisperer-Event",
        "X-Whisperer-Signature",
        "webhook-id",
        "webhook-timestamp",
        "webhook-signature",
    ]
    assert headers["X-Whisperer-Event"] == "t.e"
    assert headers["webhook-id"] == MSG_ID
    assert abs(int(headers["webhook-timestamp"]) - time.time()) < 5
    assert headers["webhook-signature"].startswith("v1,")


@pytest.mark.parametrize("secret", [None, ""])
def test_no_secret_no_signature_headers_but_id_and_timestamp(secret: str | None) -> None:
    headers = _headers(secret)
    assert set(headers) == {"X-Whisperer-Event", "webhook-id", "webhook-timestamp"}


def test_tampered_body_fails() -> None:
    headers = _headers(WHSEC)
    with pytest.raises(WebhookVerificationError):
        Webhook(WHSEC).verify(BODY.replace(b"P-1", b"P-2"), headers)


def test_tampered_timestamp_fails() -> None:
    headers = _headers(WHSEC)
    headers["webhook-timestamp"] = str(int(headers["webhook-timestamp"]) - 1)
    with pytest.raises(WebhookVerificationError):
        Webhook(WHSEC).verify(BODY, headers)


def test_tampered_id_fails() -> None:
    headers = _headers(WHSEC)
    headers["webhook-id"] = "f" * 32
    with pytest.raises(WebhookVerificationError):
        Webhook(WHSEC).verify(BODY, headers)


def test_wrong_secret_fails() -> None:
    other = "whsec_" + base64.b64encode(b"another key of 32 bytes........").decode()
    with pytest.raises(WebhookVerificationError):
        Webhook(other).verify(BODY, _headers(WHSEC))


def test_two_secrets_give_two_entries_each_verifying() -> None:
    ts = int(time.time())
    value = standard_signatures([WHSEC, PLAIN], MSG_ID, ts, BODY)
    entries = value.split(" ")
    assert entries == [
        standard_signature(WHSEC, MSG_ID, ts, BODY),
        standard_signature(PLAIN, MSG_ID, ts, BODY),
    ]
    for key in (WHSEC, base64.b64encode(PLAIN.encode()).decode()):
        headers = {"webhook-id": MSG_ID, "webhook-timestamp": str(ts), "webhook-signature": value}
        Webhook(key).verify(BODY, headers)


def test_standard_signatures_needs_a_secret() -> None:
    with pytest.raises(ValueError, match="at least one"):
        standard_signatures([], MSG_ID, 1, BODY)


def test_standard_signature_matches_spec_recomputation() -> None:
    # Independent recomputation from the spec: key = base64-decoded part after whsec_.
    ts = 1_714_564_800
    key = base64.b64decode(WHSEC.removeprefix("whsec_"))
    digest = hmac.new(key, f"{MSG_ID}.{ts}.".encode() + BODY, hashlib.sha256).digest()
    assert standard_signature(WHSEC, MSG_ID, ts, BODY) == "v1," + base64.b64encode(digest).decode()


@pytest.mark.parametrize("secret", ["whsec_not base64!", "whsec_a", "whsec_", "whsec_===="])
def test_whsec_secret_the_library_refuses_signs_as_plain(secret: str) -> None:
    # GIVEN a whsec_ secret the library cannot decode (or decodes to nothing)
    with pytest.raises(Exception):  # noqa: B017 (binascii.Error or EmptyWebhookSecretError)
        Webhook(secret)
    # THEN the key is the whole secret's UTF-8 bytes, and base64(secret) verifies
    assert standard_key(secret) == secret.encode()
    Webhook(base64.b64encode(secret.encode()).decode()).verify(BODY, _headers(secret))


def test_whsec_secret_decoded_like_the_library_unpadded_and_stray_characters() -> None:
    # The library decodes non-strictly (b64decode(rest + "==")); we follow it.
    for secret in ("whsec_" + "c2VjcmV0LWtleQ", "whsec_c2Vj cmV0"):
        Webhook(secret).verify(BODY, _headers(secret))


def _json_values() -> st.SearchStrategy[Any]:
    scalars = (
        st.none()
        | st.booleans()
        | st.integers()
        | st.floats(allow_nan=False, allow_infinity=False)
        | st.text()
    )
    return st.recursive(
        scalars,
        lambda children: (
            st.lists(children, max_size=5)
            | st.dictionaries(st.text(max_size=10), children, max_size=5)
        ),
        max_leaves=20,
    )


# (No .filter(): a filter's retry describes the strategy, which parses its lambdas' source
# with ast.parse, and CPython 3.11's AST builder is not thread-safe (gh-106905): with the
# local stack's threads in the same worker it raised "AST constructor recursion depth
# mismatch" at random.)
_secrets = st.text(min_size=1, max_size=40).map(
    lambda s: "plain-" + s if s.startswith("whsec_") else s
) | (st.binary(min_size=1, max_size=64).map(lambda b: "whsec_" + base64.b64encode(b).decode()))


def _library_key(secret: str) -> str:
    return secret if secret.startswith("whsec_") else base64.b64encode(secret.encode()).decode()


@settings(max_examples=75, deadline=None)
@given(
    payload=_json_values(),
    secret=_secrets,
    msg_id=st.text("0123456789abcdef", min_size=32, max_size=32),
)
def test_round_trip_any_json_payload_and_secret(payload: Any, secret: str, msg_id: str) -> None:
    body = build_envelope(
        event_type="x.y", delivery_uuid=msg_id, event_time="2024-01-01T00:00:00Z", payload=payload
    )
    verified = Webhook(_library_key(secret)).verify(body, _headers(secret, body, msg_id))
    assert verified == json.loads(body)
    assert verified["payload"] == json.loads(json.dumps(payload))
    expected = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    assert _headers(secret, body, msg_id)["X-Whisperer-Signature"] == f"sha256={expected}"
