"""The HTTP transport under a delivery attempt: one deadline for the exchange, interim answers.

Two rules of DESIGN §9 that ``requests``/``urllib3``/``http.client`` do not
provide, built in under urllib3's own connection and pool classes so that the
rest of :mod:`oms_webhooks.delivery.request.sender` stays plain ``requests``:

* **One deadline for the whole exchange.** urllib3's read timeout bounds each
  wait for data, so a partner that drips its status line, headers or body a
  byte at a time can hold an attempt for as long as it likes. An
  :class:`AttemptDeadline` of ``connect_timeout + read_timeout`` seconds
  starts when the first connection of the attempt starts (in
  :meth:`DeadlineHTTPConnection.connect`; the DNS lookup has its own timeout
  before that) and a watchdog alarm (:mod:`oms_webhooks.delivery.request.alarms`:
  one thread for every attempt of the process) shuts the socket down when it runs out:
  whatever is blocked on it (connect, TLS handshake, sending the body, the
  status line, interim answers, headers, the body) returns at once and the
  attempt fails with :attr:`AttemptDeadline.error`.
* **Interim answers** (RFC 9110 §15.2). ``http.client`` skips only ``100
  Continue``; any other ``1xx`` would be returned as if it were the final
  answer (``requests`` would report a ``103`` as the status of the POST).
  :class:`InterimSkippingResponse` skips every ``1xx`` but ``101`` with its
  header lines, at most :data:`MAX_INTERIM_RESPONSES` of them (all under the
  one deadline); the final answer decides. A ``101 Switching Protocols`` is
  returned as the status (not 2xx: a failed attempt); an 11th interim answer
  raises :class:`TooManyInterimResponses`.

The response class relies on ``http.client.HTTPResponse._read_status`` (the
one reader of a status line, used by ``begin()``; stable since Python 3.0)
and on ``http.client._read_headers`` to skip an interim answer's headers.
"""

from __future__ import annotations

import contextlib
import http.client
import socket
import threading
import time
from typing import Any, Final

from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

from oms_webhooks.delivery.request import alarms

__all__ = [
    "MAX_INTERIM_RESPONSES",
    "AttemptDeadline",
    "DeadlineHTTPConnection",
    "DeadlineHTTPConnectionPool",
    "DeadlineHTTPSConnection",
    "DeadlineHTTPSConnectionPool",
    "InterimSkippingResponse",
    "TooManyInterimResponses",
]

#: Interim (1xx) answers skipped before the attempt fails (DESIGN §9).
MAX_INTERIM_RESPONSES: Final = 10
_SWITCHING_PROTOCOLS: Final = 101


class TooManyInterimResponses(http.client.HTTPException):
    """More than :data:`MAX_INTERIM_RESPONSES` interim answers before a final one."""


class InterimSkippingResponse(http.client.HTTPResponse):
    """An ``http.client`` response that skips interim ``1xx`` answers other than ``101``.

    ``interim`` counts the answers skipped (0 when the first was final).
    """

    def __init__(self, sock: socket.socket, *args: Any, **kwargs: Any) -> None:
        super().__init__(sock, *args, **kwargs)
        self.interim = 0

    def _read_status(self) -> tuple[str, int, str]:
        while True:
            version, status, reason = super()._read_status()  # type: ignore[misc]
            if not 100 <= status < 200 or status == _SWITCHING_PROTOCOLS:
                return version, status, reason
            if self.interim >= MAX_INTERIM_RESPONSES:
                raise TooManyInterimResponses(
                    f"more than {MAX_INTERIM_RESPONSES} interim (1xx) responses"
                )
            self.interim += 1
            http.client._read_headers(self.fp)  # type: ignore[attr-defined]


class AttemptDeadline:
    """The time one attempt may take from its first connect, enforced by a watchdog.

    Args:
        seconds: the attempt's whole time (``connect_timeout + read_timeout``).

    :meth:`start` is called by the connection when it connects (the first
    call fixes the end; a second connection of the same attempt, to the next
    address, shares it); :meth:`watch` registers a socket the watchdog shuts
    down at the end; :meth:`cancel` stops the watchdog once the response has
    been read. ``expired`` tells whether the watchdog fired.
    """

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.expired = False
        self._ends: float | None = None
        self._sockets: list[socket.socket] = []
        self._alarm: alarms.Alarm | None = None
        self._lock = threading.Lock()
        self._cancelled = False

    @property
    def error(self) -> str:
        """The attempt's error when the deadline ran out."""
        return f"no complete response within {self.seconds:.1f} s (connect + read timeout)"

    def start(self) -> None:
        """Fix the end (now + ``seconds``) and start the watchdog, once per attempt."""
        with self._lock:
            if self._ends is not None or self._cancelled:
                return
            self._ends = time.monotonic() + self.seconds
            self._alarm = alarms.schedule(self.seconds, self._fire)

    def watch(self, sock: socket.socket) -> None:
        """Shut ``sock`` down when the deadline runs out (at once if it has)."""
        with self._lock:
            self._sockets.append(sock)
            expired = self.expired
        if expired:
            _shut(sock)

    def remaining(self) -> float:
        """Seconds left (the whole time before :meth:`start`), never below 0."""
        if self._ends is None:
            return self.seconds
        return max(0.0, self._ends - time.monotonic())

    def cancel(self) -> None:
        """Stop the watchdog (the response was read or the attempt ended)."""
        with self._lock:
            self._cancelled = True
            alarm = self._alarm
        if alarm is not None:
            alarm.cancel()

    def _fire(self) -> None:
        with self._lock:
            if self._cancelled:
                return
            self.expired = True
            sockets = list(self._sockets)
        for sock in sockets:
            _shut(sock)


def _shut(sock: socket.socket) -> None:
    """Shut a socket down both ways: blocked reads and writes on it return at once."""
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)


class _DeadlineMixin:
    """Start the attempt's deadline in ``connect()`` and hand it every new socket."""

    deadline: AttemptDeadline | None = None
    response_class: type[http.client.HTTPResponse] = InterimSkippingResponse

    def connect(self) -> None:
        if self.deadline is not None:
            self.deadline.start()
        super().connect()  # type: ignore[misc]

    def _new_conn(self) -> socket.socket:
        sock: socket.socket = super()._new_conn()  # type: ignore[misc]
        if self.deadline is not None:
            self.deadline.watch(sock)  # the raw socket: TLS handshakes are covered too
        return sock


class DeadlineHTTPConnection(_DeadlineMixin, HTTPConnection):
    """urllib3's HTTP connection under an :class:`AttemptDeadline`, skipping interim answers."""


class DeadlineHTTPSConnection(_DeadlineMixin, HTTPSConnection):
    """urllib3's HTTPS connection under an :class:`AttemptDeadline`, skipping interim answers."""


class _DeadlinePoolMixin:
    """Give each new connection the pool's current deadline (set by the adapter)."""

    deadline: AttemptDeadline | None = None

    def _new_conn(self) -> Any:
        conn = super()._new_conn()  # type: ignore[misc]
        conn.deadline = self.deadline
        return conn


class DeadlineHTTPConnectionPool(_DeadlinePoolMixin, HTTPConnectionPool):
    """An HTTP pool of :class:`DeadlineHTTPConnection`."""

    ConnectionCls = DeadlineHTTPConnection


class DeadlineHTTPSConnectionPool(_DeadlinePoolMixin, HTTPSConnectionPool):
    """An HTTPS pool of :class:`DeadlineHTTPSConnection`."""

    ConnectionCls = DeadlineHTTPSConnection
