"""Signature headers of a delivery (DESIGN §4), two schemes side by side.

**Whisperer** (our own, kept for existing partners)::

    X-Whisperer-Signature: sha256=<hex HMAC-SHA256(key=secret.encode("utf-8"), body)>

The key is the secret exactly as the partner gave it, ``whsec_`` prefix included.

**Standard Webhooks** (https://www.standardwebhooks.com, spec "Signature
scheme")::

    webhook-id: <msg_id>                 stable across retries of one delivery
    webhook-timestamp: <Unix seconds>    of this attempt
    webhook-signature: v1,<base64 HMAC-SHA256(key, f"{msg_id}.{timestamp}.".encode() + body)>

Several signatures (secret rotation) are space-separated, ``v1,a v1,b``.

The key: the ``standardwebhooks`` and ``svix`` libraries take the secret
base64-encoded, optionally behind a ``whsec_`` prefix, and decode it with
``base64.b64decode(rest + "==")`` (non-validating: characters outside the
alphabet are skipped). We derive the key the same way, so that a partner
passes a ``whsec_`` secret to the library as it is. A secret without the
prefix is a *plain* secret: the key is its UTF-8 bytes, and the partner passes
``base64(secret)`` to the library.

Decision for a ``whsec_`` secret the libraries refuse (the remainder does not
decode, ``binascii.Error``, or decodes to nothing, ``EmptyWebhookSecretError``):
we sign with the UTF-8 bytes of the whole secret, as for a plain secret, rather
than fail the delivery. The partner's library raises on that secret as it
is, and the documented fallback for plain secrets, ``base64(secret)``, then
verifies. The subscription API may later refuse such secrets outright.

Verification is not here: partners verify with the libraries, and the tests
check our headers with ``standardwebhooks``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Sequence
from typing import Final

__all__ = [
    "STANDARD_SECRET_PREFIX",
    "signature_headers",
    "standard_key",
    "standard_signature",
    "standard_signatures",
    "whisperer_signature",
]

#: Prefix of a base64-encoded Standard Webhooks secret (as issued by svix and others).
STANDARD_SECRET_PREFIX: Final = "whsec_"  # noqa: S105 (a prefix, not a secret)


def _hmac_sha256(key: bytes, data: bytes) -> bytes:
    return hmac.new(key, data, hashlib.sha256).digest()


def whisperer_signature(secret: str, body: bytes) -> str:
    """``"sha256=" + hex(HMAC-SHA256(key=secret.encode("utf-8"), body))``.

    ``secret`` is used exactly as given (a ``whsec_`` prefix is part of the
    key); ``body`` is the exact bytes sent. Rule: DESIGN §4, whisperer scheme.

    >>> whisperer_signature("s3cret", b"{}")[:15]
    'sha256=adbde1ce'
    """
    return "sha256=" + hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()


def standard_key(secret: str) -> bytes:
    """The HMAC key of ``secret`` in the Standard Webhooks scheme.

    ``whsec_<base64>`` → the decoded bytes, decoded as the ``standardwebhooks``
    library does (``b64decode(rest + "==")``, non-validating); any other
    secret, or a ``whsec_`` secret the library would refuse (undecodable or
    empty remainder) → the UTF-8 bytes of the whole secret. See the module
    docstring for why.
    """
    if secret.startswith(STANDARD_SECRET_PREFIX):
        try:
            key = base64.b64decode(secret[len(STANDARD_SECRET_PREFIX) :] + "==")
        except (binascii.Error, ValueError):
            key = b""
        if key:
            return key
    return secret.encode("utf-8")


def standard_signature(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """One Standard Webhooks signature: ``"v1," + base64(HMAC-SHA256(key, signed content))``.

    The signed content is ``f"{msg_id}.{timestamp}.".encode() + body``;
    ``timestamp`` is in Unix seconds (the ``webhook-timestamp`` header);
    the key is :func:`standard_key` of ``secret``.
    Source: Standard Webhooks spec, "Signature scheme".
    """
    signed = f"{msg_id}.{timestamp}.".encode() + body
    digest = _hmac_sha256(standard_key(secret), signed)
    return "v1," + base64.b64encode(digest).decode("ascii")


def standard_signatures(secrets: Sequence[str], msg_id: str, timestamp: int, body: bytes) -> str:
    """The ``webhook-signature`` value for several secrets, space-separated, first first.

    A receiver accepts the message when any entry verifies (secret rotation:
    old and new secret side by side). Raises ``ValueError`` for no secrets.
    """
    if not secrets:
        raise ValueError("standard_signatures needs at least one secret")
    return " ".join(standard_signature(s, msg_id, timestamp, body) for s in secrets)


def signature_headers(
    *,
    secret: str | None,
    msg_id: str,
    timestamp: int,
    body: bytes,
    event_type: str,
    previous_secrets: Sequence[str] = (),
) -> dict[str, str]:
    """The event and signature headers of one attempt, in sending order.

    Always ``X-Whisperer-Event``, ``webhook-id`` (``msg_id``, stable across
    retries) and ``webhook-timestamp`` (``timestamp``, Unix seconds of this
    attempt); with a ``secret`` (an empty string counts as none) also ``X-Whisperer-Signature`` and
    ``webhook-signature``. ``body`` is the exact bytes sent. DESIGN §4.

    ``previous_secrets`` (a rotation's grace period) add their Standard
    Webhooks signatures after the current one, space-separated, so a
    receiver holding either secret verifies; ``X-Whisperer-Signature`` has
    room for one signature and uses the current secret only.

    >>> sorted(signature_headers(secret=None, msg_id="m", timestamp=1, body=b"", event_type="t"))
    ['X-Whisperer-Event', 'webhook-id', 'webhook-timestamp']
    """
    headers = {"X-Whisperer-Event": event_type}
    if secret:
        headers["X-Whisperer-Signature"] = whisperer_signature(secret, body)
    headers["webhook-id"] = msg_id
    headers["webhook-timestamp"] = str(timestamp)
    if secret:
        keys = [secret, *(p for p in previous_secrets if p and p != secret)]
        headers["webhook-signature"] = standard_signatures(keys, msg_id, timestamp, body)
    return headers
