"""The sample receiver over real HTTP on 127.0.0.1; requests signed by an independent helper."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
from collections.abc import Callable, Iterator

import pytest
import requests

from oms_webhooks_local.receiver import make_server

PLAIN = "s3cret-plain"
WHSEC = "whsec_" + base64.b64encode(b"sixteen-byte-key").decode()


def sign(secret: str, body: bytes, msg_id: str, timestamp: int) -> dict[str, str]:
    """The delivery headers, computed here from DESIGN §4 (not with the service's code)."""
    if secret.startswith("whsec_"):
        key = base64.b64decode(secret.removeprefix("whsec_"))
    else:
        key = secret.encode("utf-8")
    signed = f"{msg_id}.{timestamp}.".encode() + body
    standard = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    whisperer = hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()
    return {
        "Content-Type": "application/json",
        "X-Whisperer-Event": "package.created",
        "X-Whisperer-Signature": f"sha256={whisperer}",
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": f"v1,{standard}",
    }


BODY = json.dumps(
    {
        "event": {"type": "package.created", "uuid": "0" * 32, "time": "2026-01-01T00:00:00Z"},
        "payload": {"name": "café"},
    },
    ensure_ascii=False,
    separators=(",", ":"),
).encode("utf-8")


@pytest.fixture
def receiver() -> Iterator[Callable[[str | None], tuple[str, list[str]]]]:
    """Start a receiver with a secret; yields (url, printed lines)."""
    servers = []

    def start(secret: str | None) -> tuple[str, list[str]]:
        lines: list[str] = []
        server = make_server("127.0.0.1", 0, secret, echo=lines.append)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}/hook", lines

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize("secret", [PLAIN, WHSEC])
def test_a_correctly_signed_delivery_is_verified(
    receiver: Callable[[str | None], tuple[str, list[str]]], secret: str
) -> None:
    url, lines = receiver(secret)
    headers = sign(secret, BODY, "a" * 32, int(time.time()))
    response = requests.post(url, data=BODY, headers=headers, timeout=5)
    assert response.status_code == 200, lines
    assert response.json() == {"verified": True}
    (printed,) = lines
    assert "a" * 32 in printed and "package.created" in printed
    assert "webhook-signature: valid; X-Whisperer-Signature: valid" in printed
    assert '"name": "café"' in printed


@pytest.mark.parametrize("secret", [PLAIN, WHSEC])
def test_a_tampered_delivery_is_401(
    receiver: Callable[[str | None], tuple[str, list[str]]], secret: str
) -> None:
    url, lines = receiver(secret)
    headers = sign(secret, BODY, "b" * 32, int(time.time()))
    tampered = BODY.replace(b"caf", b"CAF")
    response = requests.post(url, data=tampered, headers=headers, timeout=5)
    assert response.status_code == 401
    assert "webhook-signature: INVALID; X-Whisperer-Signature: INVALID" in lines[0]


def test_a_wrong_secret_or_missing_header_is_401(
    receiver: Callable[[str | None], tuple[str, list[str]]],
) -> None:
    url, _ = receiver(PLAIN)
    headers = sign("other-secret", BODY, "c" * 32, int(time.time()))
    assert requests.post(url, data=BODY, headers=headers, timeout=5).status_code == 401
    headers = sign(PLAIN, BODY, "c" * 32, int(time.time()))
    del headers["X-Whisperer-Signature"]
    assert requests.post(url, data=BODY, headers=headers, timeout=5).status_code == 401
    headers = sign(PLAIN, BODY, "c" * 32, int(time.time()) - 3600)  # replayed: too old
    assert requests.post(url, data=BODY, headers=headers, timeout=5).status_code == 401
    headers = sign(PLAIN, BODY, "c" * 32, int(time.time()))
    headers["webhook-signature"] = "garbage"
    assert requests.post(url, data=BODY, headers=headers, timeout=5).status_code == 401


def test_without_a_secret_every_delivery_is_accepted(
    receiver: Callable[[str | None], tuple[str, list[str]]],
) -> None:
    url, lines = receiver(None)
    response = requests.post(url, data=b"not json", timeout=5)
    assert response.status_code == 200
    assert "not JSON" in lines[0]
