"""Misbehaving partner endpoints on 127.0.0.1, written on raw sockets (DESIGN §9).

A :class:`RawEndpoint` accepts connections, reads each request (headers and a
``Content-Length`` body) and then runs a *script* on the connection: a
callable ``script(conn, stop)`` that writes whatever bytes it likes, as
slowly as it likes, until ``stop`` is set. Scripts for the partners of
DESIGN §9::

    with RawEndpoint(interim(b"102 Processing", b"102 Processing", final=OK)) as endpoint:
        ...  # POST to endpoint.url("/hook")
        assert endpoint.accepted == 1

``silent`` (accepts, reads, never answers), ``dripping`` (the status line and
headers one byte every ``interval`` seconds), ``slow`` (answers after
``delay`` seconds), ``interim`` (interim answers, then a final one),
``endless_interim`` (interim answers until the client hangs up), ``answer``
(any bytes at once, then end of stream: garbage, bad heads, short bodies),
``endless_body`` (a 200 whose body never ends), ``reset`` (a TCP reset
instead of an answer).
"""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
import time
from collections.abc import Callable
from types import TracebackType

from oms_webhooks.delivery.request.sender import AttemptResult, SendOptions, send

__all__ = [
    "OK",
    "RawEndpoint",
    "Script",
    "answer",
    "dripping",
    "endless_body",
    "endless_interim",
    "interim",
    "reset",
    "silent",
    "slow",
]

#: A script: writes the answer (or not) on ``conn`` until ``stop`` is set.
Script = Callable[[socket.socket, threading.Event], None]
#: A complete ``200 OK`` answer with a small body.
#: Send options of an attempt against these endpoints: a 1.5 s deadline (connect + read).
SHORT = SendOptions(connect_timeout=0.5, read_timeout=1.0, allow_private=True)
#: Upper bound of an attempt that must end at its 1.5 s deadline, on a loaded machine.
ENDS_BY = 10.0
OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok"


def silent(conn: socket.socket, stop: threading.Event) -> None:
    """Accept and read the request, never answer (a dead endpoint)."""
    stop.wait()


def slow(delay: float, answer: bytes = OK) -> Script:
    """Answer ``answer`` after ``delay`` seconds."""

    def script(conn: socket.socket, stop: threading.Event) -> None:
        if not stop.wait(delay):
            conn.sendall(answer)
            stop.wait(1.0)

    return script


def dripping(interval: float, answer: bytes = OK) -> Script:
    """Send ``answer`` one byte every ``interval`` seconds (status line first)."""

    def script(conn: socket.socket, stop: threading.Event) -> None:
        for index in range(len(answer)):
            if stop.wait(interval):
                return
            conn.sendall(answer[index : index + 1])

    return script


def interim(*lines: bytes, final: bytes = OK, headers: bytes = b"") -> Script:
    """Send an interim answer per status line (``b"102 Processing"``), then ``final``.

    ``headers`` (``b"Link: </a.css>; rel=preload\\r\\n"``) go with every interim answer.
    """

    def script(conn: socket.socket, stop: threading.Event) -> None:
        for line in lines:
            conn.sendall(b"HTTP/1.1 " + line + b"\r\n" + headers + b"\r\n")
        conn.sendall(final)
        stop.wait(1.0)

    return script


def endless_interim(interval: float = 0.01) -> Script:
    """``102 Processing`` every ``interval`` seconds until the client hangs up."""

    def script(conn: socket.socket, stop: threading.Event) -> None:
        while not stop.wait(interval):
            conn.sendall(b"HTTP/1.1 102 Processing\r\n\r\n")

    return script


def answer(data: bytes, *, close: bool = True) -> Script:
    """Send ``data`` at once; then end the stream (``close``) or keep it open, silent."""

    def script(conn: socket.socket, stop: threading.Event) -> None:
        conn.sendall(data)
        if close:
            conn.shutdown(socket.SHUT_WR)
        stop.wait(1.0 if close else None)

    return script


def endless_body(conn: socket.socket, stop: threading.Event) -> None:
    """``200 OK`` without a length, then ``x`` in 16 KiB writes until the client hangs up."""
    conn.sendall(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n")
    chunk = b"x" * 16384
    while not stop.is_set():
        conn.sendall(chunk)


def reset(conn: socket.socket, stop: threading.Event) -> None:
    """Answer with a TCP reset (``SO_LINGER`` 0, then close)."""
    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    conn.close()


class RawEndpoint:
    """A TCP server on 127.0.0.1 that runs ``script`` for each request it reads.

    Attributes:
        accepted: connections accepted so far.
        requests: request heads (bytes up to the blank line) read so far.
    """

    def __init__(self, script: Script) -> None:
        self._script = script
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(64)
        self._sock.settimeout(0.1)
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self.accepted = 0
        self.requests: list[bytes] = []
        self._threads: list[threading.Thread] = []
        self._acceptor = threading.Thread(target=self._accept, name="raw-endpoint", daemon=True)

    @property
    def port(self) -> int:
        """The port it listens on."""
        return int(self._sock.getsockname()[1])

    def url(self, path: str = "/") -> str:
        """``http://127.0.0.1:<port><path>``."""
        return f"http://127.0.0.1:{self.port}{path}"

    def start(self) -> RawEndpoint:
        """Start accepting; returns self."""
        self._acceptor.start()
        return self

    def stop(self) -> None:
        """Stop accepting, end every script and close every connection."""
        self._stop.set()
        self._acceptor.join(2.0)
        for thread in list(self._threads):
            thread.join(2.0)
        self._sock.close()

    def __enter__(self) -> RawEndpoint:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with self._lock:
                self.accepted += 1
            thread = threading.Thread(target=self._serve, args=(conn,), daemon=True)
            self._threads.append(thread)
            thread.start()

    def _serve(self, conn: socket.socket) -> None:
        with conn:
            conn.settimeout(5.0)
            try:
                head = _read_request(conn)
            except OSError:
                return
            with self._lock:
                self.requests.append(head)
            with contextlib.suppress(OSError):
                self._script(conn, self._stop)


def _read_request(conn: socket.socket) -> bytes:
    """Read one request's head and its ``Content-Length`` body; return the head."""
    data = b""
    deadline = time.monotonic() + 5.0
    while b"\r\n\r\n" not in data and time.monotonic() < deadline:
        chunk = conn.recv(65536)
        if not chunk:
            break
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip() or 0)
    while len(body) < length and time.monotonic() < deadline:
        chunk = conn.recv(65536)
        if not chunk:
            break
        body += chunk
    return head


def attempt(script: Script, options: SendOptions = SHORT) -> tuple[AttemptResult, float, int]:
    """One real attempt (:func:`send`) against ``script``.

    Returns:
        ``(result, seconds taken, connections the endpoint accepted)``.
    """
    with RawEndpoint(script) as endpoint:
        started = time.monotonic()
        result = send(endpoint.url("/hook"), b"{}", {}, auth=None, options=options)
        elapsed = time.monotonic() - started
        accepted = endpoint.accepted
    return result, elapsed, accepted
