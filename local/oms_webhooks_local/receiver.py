"""A sample partner endpoint: receive oms-webhooks deliveries and verify their signatures.

Copy it as a starting point. ``oms-webhooks receiver --port 9000 --secret S``
runs it; every delivery is printed (event type, ``webhook-id``, payload) with
the result of both signature checks (DESIGN §4):

* **Standard Webhooks** (``webhook-id``, ``webhook-timestamp``,
  ``webhook-signature``), checked with the ``standardwebhooks`` library
  (``pip install standardwebhooks``; the ``svix`` library works the same way).
  The library takes the secret base64-encoded: a ``whsec_...`` secret is
  passed as it is, a plain secret as ``base64(secret)`` (see :func:`verifier`).
  It also refuses a timestamp more than 5 minutes away (replays).
* **X-Whisperer-Signature**: ``sha256=`` + hex HMAC-SHA256 of the raw body,
  keyed with the secret's UTF-8 bytes exactly as given (``whsec_`` included).

The answer: 200 when the signatures verify (or when no secret is configured),
401 when one is missing or wrong. Always verify the raw body bytes, before
parsing the JSON.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Callable, Mapping, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from standardwebhooks.webhooks import (
    EmptyWebhookSecretError,
    Webhook,
    WebhookVerificationError,
)

from oms_webhooks.names import DEFAULT_RECEIVER_PORT


def verifier(secret: str) -> Webhook:
    """The Standard Webhooks verifier for our ``secret``."""
    if secret.startswith("whsec_"):
        try:
            return Webhook(secret)  # base64 behind the prefix: pass it as it is
        except (ValueError, EmptyWebhookSecretError):
            pass  # not valid base64: oms-webhooks then signs it as a plain secret
    # A plain secret: the library expects it base64-encoded.
    return Webhook(base64.b64encode(secret.encode("utf-8")).decode("ascii"))


def check_standard(secret: str, body: bytes, headers: Mapping[str, str]) -> bool:
    """Whether ``webhook-signature`` is valid for ``body`` (and the timestamp is recent)."""
    wanted = {"webhook-id", "webhook-timestamp", "webhook-signature"}
    lowered = {k.lower(): v for k, v in headers.items() if k.lower() in wanted}
    try:
        verifier(secret).verify(body, lowered, json_parse=False)
    except (WebhookVerificationError, ValueError):  # ValueError: malformed headers or body
        return False
    return True


def check_whisperer(secret: str, body: bytes, header: str | None) -> bool:
    """Whether ``X-Whisperer-Signature`` is ``sha256=<hex HMAC-SHA256(secret, body)>``."""
    expected = "sha256=" + hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()
    return header is not None and hmac.compare_digest(expected, header)


def make_handler(
    secret: str | Sequence[str] | None, echo: Callable[[str], None] = print
) -> type[BaseHTTPRequestHandler]:
    """A request handler class that checks deliveries and reports via ``echo``.

    ``secret`` may be several secrets while you rotate: a signature is valid
    when any of them verifies it (Standard Webhooks deliveries then carry a
    signature per secret; ``X-Whisperer-Signature`` only the new one's).
    """
    secrets = [secret] if isinstance(secret, str) else list(secret or [])

    class DeliveryHandler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            headers = dict(self.headers.items())
            verified = True
            lines = [
                f"delivery {self.headers.get('webhook-id')} "
                f"event {self.headers.get('X-Whisperer-Event')}"
            ]
            if secrets:
                signature = self.headers.get("X-Whisperer-Signature")
                standard = any(check_standard(s, body, headers) for s in secrets)
                whisperer = any(check_whisperer(s, body, signature) for s in secrets)
                verified = standard and whisperer
                lines.append(
                    f"  webhook-signature: {'valid' if standard else 'INVALID'}; "
                    f"X-Whisperer-Signature: {'valid' if whisperer else 'INVALID'}"
                )
            try:
                envelope: Any = json.loads(body)
                payload = envelope.get("payload") if isinstance(envelope, dict) else envelope
                lines.append("  payload: " + json.dumps(payload, ensure_ascii=False))
            except ValueError:
                lines.append(f"  body (not JSON): {body[:200]!r}")
            echo("\n".join(lines))
            status = 200 if verified else 401
            answer = json.dumps({"verified": verified}).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, format: str, *args: Any) -> None:
            """Quiet: :meth:`do_POST` prints what matters."""

    return DeliveryHandler


def make_server(
    host: str = "127.0.0.1",
    port: int = DEFAULT_RECEIVER_PORT,
    secret: str | Sequence[str] | None = None,
    echo: Callable[[str], None] = print,
) -> ThreadingHTTPServer:
    """A server for deliveries on ``host:port`` (port 0 = a free one); call ``serve_forever()``."""
    return ThreadingHTTPServer((host, port), make_handler(secret, echo))
