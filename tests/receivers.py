"""A real HTTP receiver on 127.0.0.1 for delivery tests (DESIGN §1: loopback only).

:class:`Receiver` runs a ``http.server.ThreadingHTTPServer`` on
``127.0.0.1:<free port>`` in a daemon thread. It records every request
(method, path, headers, raw body bytes) and answers each one with a
programmable :class:`Response` (status, headers, body, delay)::

    from tests.receivers import Receiver, Response

    with Receiver() as receiver:
        receiver.respond(Response(status=500, body=b"boom"))  # the next request
        receiver.respond(Response(status=200, delay=0.2))  # the one after
        ...  # POST to receiver.url("/hook") twice
        first, second = receiver.wait_for(2)
        assert first.body == b"..." and first.headers["Content-Type"] == "application/json"

Answers come from, in order: the queue filled by :meth:`Receiver.respond`
(one entry per request), then the ``responder`` callable if one was given
(``Receiver(responder=lambda request: Response(status=204))``), then
``default`` (200, ``b"ok"``).

A request is recorded *before* its response is delayed and sent, so a client
that timed out can still check what arrived. Requests use HTTP/1.1 with
keep-alive; ``Content-Length`` and chunked bodies are both read. A client
that hangs up early (a read cap, a timeout) is not an error here.

To reach the receiver under a DNS name, fake the name (``tests/dns.py``) and
use ``receiver.url(path, host="partner.example")``. For HTTPS pass a
server-side ``ssl.SSLContext`` (``Receiver(ssl_context=ctx)``); ``url()`` then
starts with ``https://`` and the TLS handshake runs in the request's thread.
"""

from __future__ import annotations

import ssl
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any


@dataclass(frozen=True)
class RecordedRequest:
    """One request as it arrived.

    ``headers`` is an ``email.message.Message`` (case-insensitive lookup,
    ``get_all`` for repeated headers); ``header_items`` keeps the raw
    ``(name, value)`` pairs in arrival order. ``body`` is the raw bytes
    (de-chunked when sent chunked). ``received_at`` is ``time.monotonic()``.
    """

    method: str
    path: str
    headers: Message
    header_items: list[tuple[str, str]]
    body: bytes
    client_address: tuple[str, int]
    received_at: float


@dataclass(frozen=True)
class Response:
    """How to answer one request.

    ``status``: HTTP status code. ``headers``: extra headers, a mapping or a
    sequence of pairs (to repeat a name). ``body``: raw bytes;
    ``Content-Length`` is added unless given in ``headers``. ``delay``: seconds
    to wait before sending anything (to provoke a client's read timeout).
    """

    status: int = 200
    headers: Mapping[str, str] | Sequence[tuple[str, str]] = field(default_factory=dict)
    body: bytes = b"ok"
    delay: float = 0.0

    def header_pairs(self) -> list[tuple[str, str]]:
        """``headers`` as a list of ``(name, value)`` pairs."""
        if isinstance(self.headers, Mapping):
            return list(self.headers.items())
        return list(self.headers)


Responder = Callable[[RecordedRequest], Response]


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False  # a handler still sleeping in ``delay`` must not block close
    receiver: Receiver

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Clients hanging up early (read cap, timeout) are expected; keep quiet."""


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        """No access log on stderr."""

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()  # CRLF after the chunk
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _handle(self) -> None:
        request = RecordedRequest(
            method=self.command,
            path=self.path,
            headers=self.headers,
            header_items=list(self.headers.items()),
            body=self._read_body(),
            client_address=(str(self.client_address[0]), int(self.client_address[1])),
            received_at=time.monotonic(),
        )
        response = self.server.receiver._record(request)
        if response.delay:
            time.sleep(response.delay)
        self.send_response(response.status)
        pairs = response.header_pairs()
        for name, value in pairs:
            self.send_header(name, value)
        if not any(name.lower() == "content-length" for name, _ in pairs):
            self.send_header("Content-Length", str(len(response.body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(response.body)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _handle


class Receiver:
    """A recording HTTP server on 127.0.0.1; use it as a context manager.

    ``responder`` answers requests the :meth:`respond` queue does not cover;
    ``default`` answers when there is neither; ``ssl_context`` (server side)
    makes it an HTTPS server.
    """

    def __init__(
        self,
        *,
        responder: Responder | None = None,
        default: Response | None = None,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.responder = responder
        self.ssl_context = ssl_context
        self.default = default or Response()
        self._queue: list[Response] = []
        self._requests: list[RecordedRequest] = []
        self._lock = threading.Condition()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle -----------------------------------------------------------
    def start(self) -> Receiver:
        """Bind 127.0.0.1 on a free port and serve in a daemon thread."""
        server = _Server(("127.0.0.1", 0), _Handler)
        server.receiver = self
        if self.ssl_context is not None:
            server.socket = self.ssl_context.wrap_socket(
                server.socket, server_side=True, do_handshake_on_connect=False
            )
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close the listening socket (handlers still running are abandoned)."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> Receiver:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- addresses -----------------------------------------------------------
    @property
    def port(self) -> int:
        """The TCP port the receiver listens on."""
        if self._server is None:
            raise RuntimeError("receiver not started")
        return int(self._server.server_address[1])

    def url(self, path: str = "/", *, host: str = "127.0.0.1") -> str:
        """``http(s)://<host>:<port><path>``; pass ``host`` to use a (faked) DNS name."""
        scheme = "https" if self.ssl_context is not None else "http"
        return f"{scheme}://{host}:{self.port}{path}"

    # -- programming and inspecting -----------------------------------------
    def respond(self, *responses: Response) -> None:
        """Queue answers for the next requests, one each, in order."""
        with self._lock:
            self._queue.extend(responses)

    @property
    def requests(self) -> list[RecordedRequest]:
        """A snapshot of the requests received so far, in arrival order."""
        with self._lock:
            return list(self._requests)

    def wait_for(self, count: int, timeout: float = 30.0) -> list[RecordedRequest]:
        """Wait until at least ``count`` requests arrived (at most ``timeout`` seconds).

        Returns as soon as they have; the default is generous because one delivery
        crosses two pollers, the router and the dispatcher, which a loaded 2-core
        machine (CI) can stretch past 5 s.

        Returns the snapshot; raises ``AssertionError`` on timeout.
        """
        with self._lock:
            if not self._lock.wait_for(lambda: len(self._requests) >= count, timeout):
                raise AssertionError(
                    f"expected {count} request(s) within {timeout} s, got {len(self._requests)}"
                )
            return list(self._requests)

    def __iter__(self) -> Iterator[RecordedRequest]:
        return iter(self.requests)

    def _record(self, request: RecordedRequest) -> Response:
        with self._lock:
            self._requests.append(request)
            self._lock.notify_all()
            if self._queue:
                return self._queue.pop(0)
        if self.responder is not None:
            return self.responder(request)
        return self.default
