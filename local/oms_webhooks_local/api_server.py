"""The local API's HTTP server: werkzeug with read deadlines, quiet logs and JSON errors.

:class:`QuietRequestHandler` serves each request of the local API (from
threads of the stack's process, :func:`serve_in_threads`, or from the worker
processes of :mod:`oms_webhooks_local.api_workers`).
"""

from __future__ import annotations

import io
import json
import logging
import os
import re
import socket
import threading
import time
from http import HTTPStatus
from typing import TYPE_CHECKING, Any

from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

if TYPE_CHECKING:
    from _typeshed.wsgi import WSGIApplication

logger = logging.getLogger(__name__)

#: Where the local stack listens (DESIGN §6).
HOST = "127.0.0.1"


def bind(port: int) -> socket.socket:
    """A TCP socket bound to ``127.0.0.1:port`` (not yet listening); OSError if taken."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((HOST, port))
    except OSError:
        sock.close()
        raise
    return sock


#: Seconds a client has to send a whole request (line, headers and body) once
#: it starts one; then its connection is closed (slowloris clients cannot hold
#: a worker). ``$OMS_WEBHOOKS_LOCAL_API_READ_SECONDS`` overrides it.
REQUEST_READ_SECONDS = 10.0
REQUEST_READ_SECONDS_ENV = "OMS_WEBHOOKS_LOCAL_API_READ_SECONDS"
#: Seconds one write of an answer may wait for the client to read.
RESPONSE_WRITE_SECONDS = 30.0


def request_read_seconds() -> float:
    """The request read deadline: ``$OMS_WEBHOOKS_LOCAL_API_READ_SECONDS`` (> 0), else 10 s.

    Raises:
        ValueError: the variable is set but not a number of seconds > 0 (the
            local stack checks it at start: each connection reads it again).
    """
    raw = os.environ.get(REQUEST_READ_SECONDS_ENV, "").strip()
    try:
        value = float(raw) if raw else REQUEST_READ_SECONDS
    except ValueError:
        value = float("nan")
    if not value > 0 or value == float("inf"):
        raise ValueError(f"{REQUEST_READ_SECONDS_ENV} must be a number of seconds > 0, not {raw!r}")
    return value


class _DeadlineReader(io.RawIOBase):
    """A connection's reading side that raises TimeoutError once ``deadline`` has passed.

    Each read waits at most until the deadline (``time.monotonic()`` seconds),
    however the client spaces its bytes.
    """

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self.deadline = time.monotonic() + REQUEST_READ_SECONDS

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        remaining = self.deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError("the request was not sent within its read deadline")
        self._sock.settimeout(remaining)
        return self._sock.recv_into(buffer)


class _TimedWriter(io.BufferedIOBase):
    """A connection's writing side: each write waits at most :data:`RESPONSE_WRITE_SECONDS`."""

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        self._sock.settimeout(RESPONSE_WRITE_SECONDS)
        self._sock.sendall(data)
        return len(data)


class QuietRequestHandler(WSGIRequestHandler):
    """werkzeug's request handler, quieter and JSON-speaking before WSGI too.

    Each request must arrive whole within :func:`request_read_seconds` of its
    first read (a per-read timeout would not stop a client sending one byte
    every few seconds); past it the connection is closed, or a body still
    missing answers 400.

    Requests are logged at DEBUG on this module's logger instead of werkzeug's
    INFO lines. Requests that http.server refuses before the WSGI app sees them
    (a request line over 65,536 bytes → 414, an unparsable one → 400, an
    unsupported HTTP version → 505, a header line over 65,536 bytes or too
    many headers → 431) keep http.server's status, always with a status line
    and headers, and get a JSON body in the API's error shape (DESIGN §3)
    instead of an HTML page.
    """

    def setup(self) -> None:
        """Wrap the connection in a deadline-bound reader and a timed writer.

        (Instead of ``StreamRequestHandler.setup``'s ``makefile``, whose reads
        have no overall deadline.)
        """
        self.connection = self.request
        self._read_seconds = request_read_seconds()
        self._reader = _DeadlineReader(self.connection)
        self.rfile = io.BufferedReader(self._reader)
        self.wfile = _TimedWriter(self.connection)

    def handle_one_request(self) -> None:
        """Serve one request, whose line, headers and body have their own read deadline."""
        self._reader.deadline = time.monotonic() + self._read_seconds
        super().handle_one_request()

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        """Log the request line (cut to 200 characters) and status at DEBUG.

        Not ``self.path``: a request refused while parsing has none (or the
        previous request's, on a kept-alive connection).
        """
        line = str(getattr(self, "requestline", "") or "-")
        logger.debug("%s → %s", line[:200], code)

    def log_error(self, format: str, *args: Any) -> None:
        """Log http.server's refusals (bad request line, ...) at DEBUG: client errors."""
        logger.debug("refused: " + format, *args)

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """http.server's error answer with a JSON body ``{"code", "detail", "errors"}``."""
        try:
            phrase, description = HTTPStatus(code).phrase, HTTPStatus(code).description
        except ValueError:
            phrase, description = "Error", ""
        self.log_error("code %d, message %s", code, message or phrase)
        # A refused request line leaves http.server at its default HTTP/0.9,
        # which would answer without a status line or headers: always send them.
        if getattr(self, "request_version", "HTTP/0.9") == "HTTP/0.9":
            self.request_version = "HTTP/1.0"
        self.send_response(code, message)
        self.send_header("Connection", "close")
        body = b""
        if code >= 200 and code not in (
            HTTPStatus.NO_CONTENT,
            HTTPStatus.RESET_CONTENT,
            HTTPStatus.NOT_MODIFIED,
        ):
            error = {
                "code": re.sub(r"[^a-z0-9]+", "_", phrase.lower()).strip("_"),
                "detail": message or description or phrase,
                "errors": {},
            }
            body = json.dumps(error).encode("utf-8")
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if getattr(self, "command", None) != "HEAD" and body:
            self.wfile.write(body)


def serve_in_threads(
    api_socket: socket.socket, app: WSGIApplication
) -> tuple[BaseWSGIServer, threading.Thread]:
    """Serve ``app`` on the listening ``api_socket`` from a thread per request.

    Returns:
        the werkzeug server (``shutdown()``/``server_close()`` stop it) and its
        started daemon thread ``oms-webhooks-api``.
    """
    server = make_server(
        HOST,
        api_socket.getsockname()[1],
        app,
        threaded=True,
        request_handler=QuietRequestHandler,
        fd=api_socket.fileno(),
    )
    thread = threading.Thread(
        target=server.serve_forever,
        kwargs={"poll_interval": 0.1},
        name="oms-webhooks-api",
        daemon=True,
    )
    thread.start()
    return server, thread


__all__ = [
    "HOST",
    "REQUEST_READ_SECONDS",
    "REQUEST_READ_SECONDS_ENV",
    "RESPONSE_WRITE_SECONDS",
    "QuietRequestHandler",
    "bind",
    "request_read_seconds",
    "serve_in_threads",
]
