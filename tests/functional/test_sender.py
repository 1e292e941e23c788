"""One delivery attempt against a real HTTP receiver on 127.0.0.1 (DESIGN §4).

The receiver is on loopback, so most tests pass ``allow_private=True``; DNS
answers are faked (``tests/dns.py``) and the suite refuses any connection
beyond loopback (``tests/conftest.py``).
"""

from __future__ import annotations

import base64
import socket
import ssl
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from oms_webhooks import __version__
from oms_webhooks.delivery.request.envelope import build_envelope
from oms_webhooks.delivery.request.pinning import PinnedAddressAdapter
from oms_webhooks.delivery.request.sender import (
    AttemptResult,
    SendOptions,
    excerpt,
    send,
)
from oms_webhooks.delivery.request.signing import signature_headers
from tests.dns import fake_dns
from tests.receivers import Receiver, Response

BODY = build_envelope(
    event_type="package.created",
    delivery_uuid="0123456789abcdef0123456789abcdef",
    event_time="2024-05-01T12:00:00Z",
    payload={"id": "P-1", "city": "Zürich"},
)
LOOPBACK = SendOptions(allow_private=True)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver() as r:
        yield r


def _send(url: str, options: SendOptions = LOOPBACK, **kwargs: object) -> AttemptResult:
    return send(url, BODY, kwargs.pop("headers", {}), auth=None, options=options, **kwargs)  # type: ignore[arg-type]


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_2xx_is_delivered_with_exact_body_and_all_headers(receiver: Receiver) -> None:
    # GIVEN signature headers then a partner's additional header, and basic auth
    receiver.respond(Response(status=202, body=b"accepted"))
    signed = signature_headers(
        secret="whsec_c2VjcmV0", msg_id="m1", timestamp=int(time.time()), body=BODY, event_type="t"
    )
    headers = {**signed, "X-Partner": "yes"}
    before = datetime.now(UTC)
    # WHEN
    result = send(
        receiver.url("/hook?x=1"), BODY, headers, auth=("user", "pässword"), options=LOOPBACK
    )
    # THEN
    assert result.delivered and result.status_code == 202 and result.error is None
    assert result.response_excerpt == "accepted"
    assert before <= result.at <= datetime.now(UTC) and result.at.tzinfo is UTC
    assert 0 <= result.response_time_ms < 2000
    (request,) = receiver.requests
    assert request.method == "POST" and request.path == "/hook?x=1"
    assert request.body == BODY
    h = request.headers
    assert h["Content-Type"] == "application/json"
    assert h["User-Agent"] == f"oms-webhooks/{__version__}"
    assert h["Host"] == f"127.0.0.1:{receiver.port}"
    for name, value in headers.items():
        assert h[name] == value
    expected_auth = base64.b64encode("user:pässword".encode()).decode()
    assert h["Authorization"] == f"Basic {expected_auth}"
    names = [name.lower() for name, _ in request.header_items]
    assert names.index("x-whisperer-signature") < names.index("x-partner")


def test_500_is_a_failure_with_status_and_excerpt(receiver: Receiver) -> None:
    receiver.respond(Response(status=500, body=b'{"error": "boom"}'))
    result = _send(receiver.url("/"))
    assert not result.delivered and result.status_code == 500
    assert result.error is None
    assert result.response_excerpt == '{"error": "boom"}'
    assert result.retry_after is None and not result.is_gone


def test_410_is_gone(receiver: Receiver) -> None:
    receiver.respond(Response(status=410, body=b""))
    result = _send(receiver.url("/"))
    assert result.is_gone and not result.delivered and result.response_excerpt == ""


def test_large_body_read_cap_and_excerpt_bound(receiver: Receiver) -> None:
    # GIVEN a 5 MB answer WHEN sent THEN at most the cap is read, the excerpt ≤ 4096 bytes
    receiver.respond(Response(status=200, body=b"x" * 5_000_000))
    options = SendOptions(allow_private=True, max_response_bytes=64 * 1024)
    started = time.monotonic()
    result = _send(receiver.url("/"), options)
    # (a loose bound for a loaded 2-core machine: the cap is proven by the endless
    # answer of test_partner_answers.py, delivered without waiting for its end)
    assert time.monotonic() - started < 10
    assert result.delivered
    assert result.response_excerpt == "x" * 4096
    assert len(result.response_excerpt.encode()) <= 4096


def test_non_utf8_response_gets_replacement_characters(receiver: Receiver) -> None:
    receiver.respond(Response(status=400, body=b"bad \xff\xfe input \xc3"))
    result = _send(receiver.url("/"))
    assert result.status_code == 400
    assert result.response_excerpt == "bad \ufffd\ufffd input \ufffd"


def test_excerpt_cut_at_a_character_boundary_within_the_byte_bound() -> None:
    assert excerpt("é".encode() * 3000, 4096) == "é" * 2048
    assert excerpt(b"a" + "é".encode() * 3000, 4096) == "a" + "é" * 2047
    invalid = excerpt(b"\xff" * 5000, 4096)  # each U+FFFD takes 3 bytes
    assert len(invalid.encode()) <= 4096 and set(invalid) == {"\ufffd"}
    assert excerpt(b"", 4096) == ""


def test_302_is_a_failure_not_followed(receiver: Receiver) -> None:
    receiver.respond(Response(status=302, headers={"Location": receiver.url("/elsewhere")}))
    result = _send(receiver.url("/hook"))
    assert not result.delivered and result.status_code == 302
    assert result.error == "redirect not followed (302)"
    time.sleep(0.1)
    assert [r.path for r in receiver.requests] == ["/hook"]


def test_connection_refused_is_a_fast_failure() -> None:
    # GIVEN a connect timeout of 20 s WHEN the port refuses THEN the attempt does not wait it out
    options = SendOptions(allow_private=True, connect_timeout=20.0)
    started = time.monotonic()
    result = _send(f"http://127.0.0.1:{_closed_port()}/", options)
    assert time.monotonic() - started < 10
    assert result.status_code is None and result.error == "connection refused"
    assert not result.delivered


def test_read_timeout(receiver: Receiver) -> None:
    # GIVEN an answer after 20 s WHEN the read timeout is 0.5 s THEN it ends long before
    # (bounds with room for a loaded 2-core machine)
    receiver.respond(Response(status=200, delay=20.0))
    options = SendOptions(allow_private=True, read_timeout=0.5)
    started = time.monotonic()
    result = _send(receiver.url("/"), options)
    assert time.monotonic() - started < 10
    assert result.status_code is None and result.error == "read timeout after 0.5 s"
    assert not result.delivered and 450 <= result.response_time_ms < 10_000


@pytest.mark.parametrize("status", [429, 503])
def test_retry_after_captured(receiver: Receiver, status: int) -> None:
    receiver.respond(Response(status=status, headers={"Retry-After": "120"}))
    result = _send(receiver.url("/"))
    assert result.status_code == status and result.retry_after == "120"


def test_retry_after_ignored_on_other_statuses(receiver: Receiver) -> None:
    receiver.respond(Response(status=500, headers={"Retry-After": "120"}))
    assert _send(receiver.url("/")).retry_after is None


def test_name_is_connected_by_ip_with_host_header(receiver: Receiver) -> None:
    with fake_dns({"partner.example": ["127.0.0.1"]}) as queried:
        result = _send(receiver.url("/hook", host="partner.example"))
    assert result.delivered
    assert queried == ["partner.example"]  # one lookup: ours; the connection did not resolve
    (request,) = receiver.requests
    assert request.headers["Host"] == f"partner.example:{receiver.port}"


def test_metadata_address_refused_even_with_allow_private(receiver: Receiver) -> None:
    with fake_dns({"evil.example": ["169.254.169.254"]}):
        result = _send(receiver.url("/", host="evil.example"))
    assert result.status_code is None and not result.delivered
    assert result.error is not None
    assert result.error.startswith("target refused: resolves to 169.254.169.254")
    assert "link-local" in result.error
    assert receiver.requests == []


def test_any_bad_address_among_several_refuses(receiver: Receiver) -> None:
    with fake_dns({"mixed.example": ["127.0.0.1", "10.0.0.5"]}):
        result = _send(receiver.url("/", host="mixed.example"), SendOptions())
    assert result.error == "target refused: resolves to 127.0.0.1, a loopback address"
    assert receiver.requests == []


def test_private_address_refused_without_allow_private(receiver: Receiver) -> None:
    with fake_dns({"intranet.example": ["10.0.0.5"]}):
        result = _send(receiver.url("/", host="intranet.example"), SendOptions())
    assert result.error == "target refused: resolves to 10.0.0.5, a private address"


def test_loopback_literal_refused_without_allow_private(receiver: Receiver) -> None:
    result = _send(receiver.url("/"), SendOptions(allow_private=False))
    assert result.error == "target refused: 127.0.0.1, a loopback address"
    assert result.status_code is None and receiver.requests == []


def test_unresolvable_name_is_a_dns_failure() -> None:
    with fake_dns({}):
        result = _send("http://nowhere.example/")
    assert result.status_code is None and result.error is not None
    assert result.error.startswith("DNS lookup failed")


def test_slow_dns_is_a_dns_failure_within_its_timeout() -> None:
    # GIVEN a resolver that answers after 20 s WHEN the DNS timeout is 0.2 s
    # THEN the attempt ends long before the answer (room for a loaded 2-core machine)
    with fake_dns({"slow.example": lambda: time.sleep(20) or ["127.0.0.1"]}):
        started = time.monotonic()
        result = _send("http://slow.example/", SendOptions(allow_private=True, dns_timeout=0.2))
    assert time.monotonic() - started < 10
    assert result.error == "DNS lookup failed (timed out after 0.2 s)"


def test_rebinding_connects_to_the_vetted_address(receiver: Receiver) -> None:
    # GIVEN a name whose answer changes after the first lookup (127.0.0.1, then 10.0.0.9)
    answers = iter([["127.0.0.1"], ["10.0.0.9"]])
    with fake_dns({"rebind.example": lambda: next(answers, ["10.0.0.9"])}) as queried:
        # WHEN sent (a second resolution would connect to 10.0.0.9: the conftest would fail)
        result = _send(receiver.url("/", host="rebind.example"))
    # THEN one lookup, and the request reached the vetted 127.0.0.1
    assert queried == ["rebind.example"]
    assert result.delivered and len(receiver.requests) == 1


def test_next_address_tried_when_the_first_refuses_the_connection(receiver: Receiver) -> None:
    with fake_dns({"dual.example": ["::1", "127.0.0.1"]}):
        result = _send(receiver.url("/", host="dual.example"))  # nothing listens on ::1 there
    assert result.delivered and len(receiver.requests) == 1


def test_invalid_url_is_a_failed_attempt() -> None:
    result = _send("not a url")
    assert result.status_code is None and result.error is not None
    assert result.error.startswith("invalid request")


def test_factory_session_adapters_and_environment_are_not_used(
    receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a proxy in the environment and a factory session with its own adapter
    monkeypatch.setenv("HTTP_PROXY", "http://10.1.2.3:3128")
    sessions: list[requests.Session] = []

    def factory() -> requests.Session:
        session = requests.Session()
        session.mount("http://partner", requests.adapters.HTTPAdapter())
        sessions.append(session)
        return session

    with fake_dns({"partner.example": ["127.0.0.1"]}) as queried:
        result = _send(receiver.url("/", host="partner.example"), session_factory=factory)
    assert result.delivered and queried == ["partner.example"]
    assert sessions and not sessions[0].trust_env


def test_pinned_adapter_keeps_the_name_for_tls() -> None:
    adapter = PinnedAddressAdapter("93.184.215.14")
    request = requests.Request("POST", "https://partner.example:8443/hook").prepare()
    host_params, pool_kwargs = adapter.build_connection_pool_key_attributes(request, True)
    assert host_params["host"] == "93.184.215.14" and host_params["port"] == 8443
    assert pool_kwargs["server_hostname"] == "partner.example"  # type: ignore[typeddict-item]
    assert pool_kwargs["assert_hostname"] == "partner.example"  # type: ignore[typeddict-item]


def _certificate(tmp_path: Path, name: str) -> tuple[ssl.SSLContext, Path]:
    """A server context with a self-signed certificate for ``name``, and the cert's path."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_path, key_path)
    return context, cert_path


def _trusting(ca: Path) -> requests.Session:
    session = requests.Session()
    session.verify = str(ca)
    return session


@pytest.mark.parametrize(
    ("cert_name", "delivered"), [("partner.example", True), ("other.example", False)]
)
def test_https_to_pinned_ip_verifies_the_name(
    tmp_path: Path, cert_name: str, delivered: bool
) -> None:
    # GIVEN an HTTPS receiver whose certificate names cert_name, recording the SNI it sees
    context, ca = _certificate(tmp_path, cert_name)
    seen_sni: list[str | None] = []
    context.sni_callback = lambda _sock, name, _ctx: seen_sni.append(name)
    with Receiver(ssl_context=context) as receiver, fake_dns({"partner.example": ["127.0.0.1"]}):
        # WHEN sent to partner.example (pinned to 127.0.0.1), trusting that certificate
        result = _send(
            receiver.url("/", host="partner.example"), session_factory=lambda: _trusting(ca)
        )
    # THEN SNI is the name, and the certificate is checked against the name, not the IP
    assert seen_sni == ["partner.example"]
    assert result.delivered is delivered
    if not delivered:
        assert result.error is not None and result.error.startswith("TLS error")


def test_3xx_without_location_is_still_a_redirect_failure(receiver: Receiver) -> None:
    receiver.respond(Response(status=304, body=b""))
    result = _send(receiver.url("/"))
    assert not result.delivered and result.error == "redirect not followed (304)"
