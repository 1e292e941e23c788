"""One HTTP attempt of a delivery (DESIGN §4); knows nothing of SQS, DynamoDB or Lambda.

:func:`send` is a small pipeline, each step handing a typed value to the next
(STYLE 4, after svix ``worker.rs``)::

    _prepare    → requests.PreparedRequest (headers, body, basic auth)
    pinning.vet → the target's addresses, every one checked, or a refusal
    _post       → the response status, headers and first bytes, or an error
    send        → AttemptResult (never raises for network errors)

Rules (DESIGN §4): ``POST`` with ``Content-Type: application/json`` and
``User-Agent: oms-webhooks/<version>``, then the caller's headers (signature
headers first, then the partner's additional headers: the caller merges);
success = 2xx; redirects are not followed (a 3xx is a failure with its status
recorded); timeouts connect 5 s, read 10 s by default; the response body is
read up to a cap (64 KiB) and an excerpt (≤ 4 KiB) kept.

**One deadline, interim answers (DESIGN §9; :mod:`oms_webhooks.delivery.request.transport`).**
From its first connect an attempt has ``connect_timeout + read_timeout``
seconds in all, whatever the partner sends and however slowly; interim
``1xx`` answers other than ``101`` are skipped (at most 10), the final answer
decides; a ``101`` is a failed attempt.

**DNS pinning (DESIGN §3: the guard runs again before every send;
:mod:`oms_webhooks.delivery.request.pinning`).** The host is resolved once per
attempt and every address it resolves to is vetted; the connection goes to a
vetted address itself, never resolving the name again. Addresses are tried in
``getaddrinfo`` order; the next one is tried only when connecting to one fails
outright (nothing was sent), so an attempt never POSTs twice. Error texts and
failure kinds: :mod:`oms_webhooks.delivery.request.failures`.
"""

from __future__ import annotations

import codecs
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final, Literal, Protocol
from urllib.parse import urlsplit

import requests
import urllib3.exceptions
from requests.auth import HTTPBasicAuth

from oms_webhooks import __version__
from oms_webhooks.delivery.request.failures import connect_failed, describe, failure_kind
from oms_webhooks.delivery.request.pinning import PinnedAddressAdapter, Refused, vet
from oms_webhooks.delivery.request.redaction import redact_result, secret_strings, url_secrets
from oms_webhooks.delivery.request.transport import AttemptDeadline
from oms_webhooks.delivery.request.url_guard import DEFAULT_PORTS
from oms_webhooks.names import SERVICE_NAME

__all__ = [
    "DEFAULT_USER_AGENT",
    "AttemptResult",
    "SendOptions",
    "excerpt",
    "send",
]

DEFAULT_USER_AGENT: Final = f"{SERVICE_NAME}/{__version__}"
#: Statuses whose ``Retry-After`` is kept (DESIGN §4: honoured on 429/503).
_RETRY_AFTER_STATUSES: Final = frozenset({429, 503})
_SWITCHING_PROTOCOLS: Final = 101


@dataclass(frozen=True)
class AttemptResult:
    """What one attempt did; every attempt is recorded (DESIGN §4).

    - ``at``: start of the attempt, a timezone-aware UTC datetime.
    - ``status_code``: the HTTP status, or None when no response arrived.
    - ``error``: why the attempt failed without a usable response, or None:
      ``"connection refused"``, ``"connect timeout after 5.0 s"``,
      ``"read timeout after 10.0 s"``, ``"DNS lookup failed (...)"``,
      ``"target refused: resolves to 10.0.0.5, a private address"``,
      ``"redirect not followed (302)"``, ``"no complete response within
      15.0 s (connect + read timeout)"``, ``"more than 10 interim (1xx)
      responses"``, ... With a ``status_code`` it says
      what went wrong after the status line (a redirect, a body that could not
      be read); ``delivered`` still follows the status alone.
    - ``response_time_ms``: milliseconds from the start (DNS lookup included)
      until the response body was read (up to the cap) or the attempt failed.
    - ``response_excerpt``: at most ``SendOptions.excerpt_bytes`` (4 KiB) of
      UTF-8 of the response body's start, decoded with ``errors="replace"`` and
      cut at a character boundary; ``""`` without a body.
    - ``retry_after``: the raw ``Retry-After`` header of a 429 or 503, else None.
    - ``failure``: without a status, what kind of failure counts against the
      target's circuit breaker (DESIGN §9): ``"timeout"`` (connect, read, or
      the attempt's deadline) or ``"connection"`` (refused, reset, TLS, DNS,
      a broken exchange); None with a status, or when the URL guard refused
      the target or the request was invalid.
    """

    at: datetime
    status_code: int | None
    error: str | None
    response_time_ms: int
    response_excerpt: str = ""
    retry_after: str | None = None
    failure: Literal["connection", "timeout"] | None = None

    @property
    def delivered(self) -> bool:
        """True for a 2xx status: the delivery succeeded (DESIGN §4)."""
        return self.status_code is not None and 200 <= self.status_code < 300

    @property
    def is_gone(self) -> bool:
        """True for 410 Gone: the delivery ends ``failed``, the subscription turns inactive."""
        return self.status_code == 410


class _SendSettings(Protocol):
    """The fields of :class:`oms_webhooks.settings.Settings` that :class:`SendOptions` reads."""

    allow_private_targets: bool
    dns_timeout_seconds: float
    connect_timeout_seconds: float
    read_timeout_seconds: float
    max_response_bytes: int


@dataclass
class SendOptions:
    """How one attempt is made. Times in seconds, sizes in bytes.

    - ``connect_timeout`` (5.0) and ``read_timeout`` (10.0): DESIGN §4 defaults;
      the read timeout bounds each wait for data; the whole exchange (connect,
      TLS, request, interim answers, status line, headers, body) ends within
      ``connect_timeout + read_timeout`` of the first connect (DESIGN §9,
      :class:`oms_webhooks.delivery.request.transport.AttemptDeadline`).
    - ``dns_timeout`` (2.0): bound of the DNS lookup (``OMS_WEBHOOKS_DNS_TIMEOUT_SECONDS``).
    - ``max_response_bytes`` (64 KiB): at most this much of the response body
      is read, then the connection is closed.
    - ``excerpt_bytes`` (4096): size bound of ``AttemptResult.response_excerpt``
      in UTF-8 bytes (DESIGN §4: ≤ 4 KiB).
    - ``allow_private``: let loopback and private addresses through (never
      link-local, multicast, reserved, unspecified); DESIGN §3.
    - ``user_agent``: ``oms-webhooks/<version>``.
    """

    connect_timeout: float = 5.0
    read_timeout: float = 10.0
    dns_timeout: float = 2.0
    max_response_bytes: int = 64 * 1024
    excerpt_bytes: int = 4096
    allow_private: bool = False
    user_agent: str = DEFAULT_USER_AGENT

    @classmethod
    def from_settings(cls, settings: _SendSettings) -> SendOptions:
        """Options from the service settings (timeouts, DNS timeout, private targets)."""
        return cls(
            connect_timeout=settings.connect_timeout_seconds,
            read_timeout=settings.read_timeout_seconds,
            dns_timeout=settings.dns_timeout_seconds,
            allow_private=settings.allow_private_targets,
            max_response_bytes=settings.max_response_bytes,
        )


@dataclass(frozen=True)
class _Response:
    status_code: int
    retry_after: str | None
    head: bytes  # the first max_response_bytes of the body
    error: str | None  # what went wrong after the status line, if anything


def excerpt(data: bytes, limit: int) -> str:
    """The start of ``data`` as text of at most ``limit`` UTF-8 bytes.

    Decoded as UTF-8 with ``errors="replace"`` (each invalid byte becomes
    U+FFFD, 3 bytes in UTF-8) and cut at a character boundary: a character
    split by the cut is dropped, never half-kept.

    >>> excerpt("héllo".encode(), 2)
    'h'
    """
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    text = decoder.decode(data[:limit], final=len(data) <= limit)
    encoded = text.encode("utf-8")
    if len(encoded) > limit:  # replacement characters made it longer
        text = encoded[:limit].decode("utf-8", errors="ignore")
    return text


def _prepare(
    session: requests.Session,
    url: str,
    body: bytes,
    headers: Mapping[str, str],
    auth: tuple[str, str] | None,
    options: SendOptions,
) -> requests.PreparedRequest:
    """The POST as requests will send it; raises ``Refused`` for a URL requests refuses."""
    all_headers = {
        "Content-Type": "application/json",
        "User-Agent": options.user_agent,
        "Accept-Encoding": "identity",
        **headers,
    }
    # Basic credentials as UTF-8 (RFC 7617 charset=UTF-8; requests would use latin-1).
    basic = HTTPBasicAuth(auth[0].encode(), auth[1].encode()) if auth is not None else None
    request = requests.Request("POST", url, data=body, headers=all_headers, auth=basic)
    try:
        prepared = session.prepare_request(request)
    except (requests.RequestException, ValueError) as exc:
        raise Refused(f"invalid request: {exc}") from None
    parts = urlsplit(prepared.url or "")
    if parts.scheme not in DEFAULT_PORTS or not parts.hostname:
        raise Refused(f"invalid request: not an http(s) URL with a host: {url!r}")
    # The Host header of the URL, since the connection goes to an IP address.
    prepared.headers["Host"] = parts.netloc.rpartition("@")[2]
    return prepared


def _post(
    prepared: requests.PreparedRequest,
    address: str,
    options: SendOptions,
    session: requests.Session,
    deadline: AttemptDeadline,
) -> _Response:
    """Send ``prepared`` to ``address`` and read the response up to the cap, by ``deadline``.

    Raises requests/urllib3/OS errors of the connection or of the status line
    (also when the deadline's watchdog shut the socket: check ``deadline.expired``).
    """
    session.adapters.clear()  # no adapter of the factory's may bypass the pinning
    adapter = PinnedAddressAdapter(address, deadline)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    response = session.send(
        prepared,
        allow_redirects=False,
        stream=True,
        timeout=(options.connect_timeout, options.read_timeout),
    )
    if deadline.expired:  # the head was cut short: a status line parsed from it means nothing
        response.close()
        raise urllib3.exceptions.ProtocolError(deadline.error)
    with response:
        retry_after = (
            response.headers.get("Retry-After")
            if response.status_code in _RETRY_AFTER_STATUSES
            else None
        )
        error = None
        chunks: list[bytes] = []
        received = 0
        try:
            while received < options.max_response_bytes:
                chunk = response.raw.read(
                    min(options.max_response_bytes - received, 16 * 1024), decode_content=True
                )
                if not chunk:
                    break
                chunks.append(chunk)
                received += len(chunk)
        except (requests.RequestException, urllib3.exceptions.HTTPError, OSError) as exc:
            error = f"{_describe(exc, options)} (reading the response body)"
        finally:
            deadline.cancel()
        if deadline.expired:
            error = deadline.error
        if error is None and response.status_code == _SWITCHING_PROTOCOLS:
            error = "101 Switching Protocols is not an answer to a delivery"
        if error is None and 300 <= response.status_code < 400:
            error = f"redirect not followed ({response.status_code})"
        return _Response(response.status_code, retry_after, b"".join(chunks), error)


def _describe(exc: BaseException, options: SendOptions) -> str:
    """The attempt's error text for a failed connection or read (:func:`.failures.describe`)."""
    return describe(exc, connect_timeout=options.connect_timeout, read_timeout=options.read_timeout)


def send(
    url: str,
    body: bytes,
    headers: Mapping[str, str],
    *,
    auth: tuple[str, str] | None,
    options: SendOptions,
    signing_secrets: Iterable[str] = (),
    session_factory: Callable[[], requests.Session] | None = None,
) -> AttemptResult:
    """Make one delivery attempt: ``POST body`` to ``url``; never raises for network errors.

    ``body`` is the exact bytes to send (and that were signed);
    ``headers`` go after ``Content-Type`` and ``User-Agent`` and may override
    them (pass signature headers first, then the partner's additional
    headers); ``auth`` is HTTP Basic ``(user, password)``, sent as UTF-8.
    ``session_factory`` makes the ``requests.Session`` (default
    ``requests.Session``); its adapters are replaced by the pinning adapter,
    its environment trust (proxies, ``.netrc``) switched off, and it is closed
    after the attempt.

    Every failure, a refused target, DNS, connection, TLS, timeout, 3xx or
    non-2xx status, is an :class:`AttemptResult` with ``delivered`` False;
    programming errors (and the test suite's connection guard) still raise.
    The result's error and excerpt never carry a secret of the request, in one
    pass: the URL's query, fragment and user info (:func:`.redaction.url_secrets`:
    a partner echoing our request line, or an error quoting the URL, would put
    them there), credential-like ``headers``, ``auth`` and ``signing_secrets``
    (:func:`.redaction.secret_strings`: a partner echoing our headers).

    Example (``receiver`` from ``tests/receivers.py``)::

        result = send(receiver.url("/hook"), b"{}", {"X-Whisperer-Event": "t"},
                      auth=None, options=SendOptions(allow_private=True))
        assert result.delivered and result.status_code == 200
    """
    at = datetime.now(UTC)
    started = time.monotonic()
    carried = secret_strings(headers=headers, auth=auth, signing_secrets=signing_secrets)
    hidden = url_secrets(url) + carried

    def result(
        status: int | None,
        error: str | None,
        head: bytes = b"",
        retry_after: str | None = None,
        failure: Literal["connection", "timeout"] | None = None,
    ) -> AttemptResult:
        attempted = AttemptResult(
            at=at,
            status_code=status,
            error=error,
            response_time_ms=round((time.monotonic() - started) * 1000),
            response_excerpt=excerpt(head, options.excerpt_bytes),
            retry_after=retry_after,
            failure=failure,
        )
        return redact_result(attempted, hidden, limit=options.excerpt_bytes)

    session = (session_factory or requests.Session)()
    session.trust_env = False
    try:
        prepared = _prepare(session, url, body, headers, auth, options)
        hidden = url_secrets(url, prepared.url or "") + carried
        addresses = vet(
            prepared.url or "",
            dns_timeout=options.dns_timeout,
            allow_private=options.allow_private,
        )
    except Refused as refusal:
        session.close()
        return result(None, str(refusal), failure=refusal.failure)
    deadline = AttemptDeadline(options.connect_timeout + options.read_timeout)
    try:
        for index, address in enumerate(addresses):
            try:
                response = _post(prepared, address, options, session, deadline)
            except (requests.RequestException, urllib3.exceptions.HTTPError, OSError) as exc:
                if deadline.expired:
                    return result(None, deadline.error, failure="timeout")
                if index + 1 < len(addresses) and connect_failed(exc):
                    continue
                return result(
                    None,
                    describe(
                        exc,
                        connect_timeout=options.connect_timeout,
                        read_timeout=options.read_timeout,
                    ),
                    failure=failure_kind(exc),
                )
            except ValueError as exc:  # e.g. a header value http.client refuses
                return result(None, f"invalid request: {exc}")
            return result(response.status_code, response.error, response.head, response.retry_after)
        raise AssertionError("unreachable: the loop returns")  # pragma: no cover
    finally:
        deadline.cancel()
        session.close()
