"""The local API served by several processes, as several Lambda execution environments would.

On AWS, API Gateway runs each request in an execution environment of the api
function that serves one request at a time, and starts more environments for
requests that arrive meanwhile: a slow request (a ping to a partner that
takes 10 s to answer) never delays another tenant's. Powertools' resolver
keeps the current event in class-level state (``BaseRouter.current_event``),
so one process can serve only one request at a time; the local stack
therefore runs :data:`DEFAULT_API_WORKERS` worker processes
(``python -m oms_webhooks_local.api_workers``), each with its own resolver
(the real authorizer and api handlers behind
:class:`~oms_webhooks_local.gateway.LocalApiGateway`), each talking to the
AWS endpoint over HTTP only.

They share one listening socket (inherited as a file descriptor): each
worker serves one connection at a time (HTTP/1.0, closed after the answer)
and accepts the next only once it is free, so the kernel hands a new
connection to an idle worker. A connection must send its whole request
within the read deadline (:func:`~oms_webhooks_local.api_server.request_read_seconds`,
10 s), so a slowloris client holds a worker for that long at most.

The pool grows as Lambda starts more environments: each worker tells the
pool (one line on a pipe of its own, ``--report-fd``) when it takes a
connection (``busy``) and when it is done (``idle``); whenever no worker
is idle or starting, the pool starts one more, and as many more as
connections wait in the listening socket's accept queue (Linux says how
many), up to ``max_count`` (:data:`MAX_API_WORKERS`). So a request that
arrives while every worker is held by a slow ping or a slowloris client
finds the spare worker started for it, instead of waiting for the ping to
end; only with ``max_count`` workers busy does a request wait in the
socket's backlog, as at Lambda's concurrency limit. Workers started that
way stay until the stack stops.

A worker inherits the environment of the process that starts it (the local
stack's AWS endpoint, credentials and settings, and any hook activated by an
environment variable) and its stdout and stderr (the handlers' Powertools log
lines reach the operator as the in-process stack's do; they are not reports),
reports ``ready`` once its handlers are imported, ignores SIGINT (its
parent stops it) and exits when its stdin closes (the parent stopped it, or
is gone).
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import select
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
from typing import Any

from oms_webhooks_local.children import stop_children

logger = logging.getLogger(__name__)

#: Worker processes of ``oms-webhooks local`` (concurrent API requests).
DEFAULT_API_WORKERS = 4
#: The most worker processes a pool grows to (module docstring).
MAX_API_WORKERS = 16
#: Seconds between the pool's looks at its listening socket's backlog.
WATCH_SECONDS = 0.2
#: Seconds to wait for a worker to import its handlers.
WORKER_START_SECONDS = 120.0


#: Lines a worker writes on its report pipe (module docstring).
READY, BUSY, IDLE = b"ready", b"busy", b"idle"


class ApiWorkerPool:
    """API worker processes serving ``listening`` (a bound, listening socket).

    Starts ``count`` workers, and more (up to ``max_count``) whenever none is
    idle (module docstring). :meth:`start` returns once the first ``count``
    are ready; :meth:`stop` ends them all.
    """

    def __init__(
        self,
        listening: socket.socket,
        count: int = DEFAULT_API_WORKERS,
        *,
        max_count: int | None = None,
    ) -> None:
        if count < 1:
            raise ValueError("an API worker pool needs at least one worker")
        self._socket = listening.dup()  # the caller may close its own; later workers need it
        self._count = count
        self.max_count = max(count, MAX_API_WORKERS if max_count is None else max_count)
        self._workers: list[subprocess.Popen[bytes]] = []
        #: Each worker's report pipe (the reading end), by pid.
        self._reports: dict[int, int] = {}
        #: Each worker's state: READY (idle), BUSY, or None while it starts.
        self._states: dict[int, bytes | None] = {}
        #: Each worker's report bytes after its last whole line.
        self._pending: dict[int, bytes] = {}
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._monitor: threading.Thread | None = None
        self._wake_r, self._wake_w = os.pipe()

    def _spawn(self) -> subprocess.Popen[bytes]:
        """Start one worker process (call with the lock held)."""
        fd = self._socket.fileno()
        report_r, report_w = os.pipe()
        try:
            worker = subprocess.Popen(  # noqa: S603 - our own module, no shell
                [
                    sys.executable,
                    "-m",
                    "oms_webhooks_local.api_workers",
                    "--fd",
                    str(fd),
                    "--report-fd",
                    str(report_w),
                ],
                stdin=subprocess.PIPE,
                pass_fds=(fd, report_w),
                env=dict(os.environ),
                start_new_session=True,
            )
        except BaseException:
            os.close(report_r)
            raise
        finally:
            os.close(report_w)  # the worker holds it: end of file once the worker is gone
        self._workers.append(worker)
        self._reports[worker.pid] = report_r
        self._states[worker.pid] = None
        self._pending[worker.pid] = b""
        return worker

    def start(self) -> None:
        """Start ``count`` workers; wait until each has imported its handlers.

        Raises:
            RuntimeError: a worker did not become ready (the others are stopped).
        """
        try:
            with self._lock:
                started = [self._spawn() for _ in range(self._count)]
            deadline = time.monotonic() + WORKER_START_SECONDS
            while any(self._states.get(w.pid) is None for w in started):
                if time.monotonic() > deadline or any(w.pid not in self._states for w in started):
                    raise RuntimeError("an API worker process did not start")
                self._pump(1.0)
        except BaseException:
            self.stop()
            raise
        self._monitor = threading.Thread(
            target=self._watch, name="oms-webhooks-api-pool", daemon=True
        )
        self._monitor.start()

    @property
    def pids(self) -> list[int]:
        """The workers' process ids."""
        with self._lock:
            return [worker.pid for worker in self._workers]

    @property
    def busy(self) -> int:
        """How many workers are serving a connection now."""
        with self._lock:
            return sum(1 for state in self._states.values() if state == BUSY)

    def _pump(self, timeout: float) -> None:
        """Wait up to ``timeout`` s for workers' report lines; apply them (end of file: gone)."""
        with self._lock:
            by_fd = {self._reports[w.pid]: w for w in self._workers}
        try:
            readable, _, _ = select.select([*by_fd, self._wake_r], [], [], timeout)
        except (OSError, ValueError):  # a stream closed meanwhile
            return
        for fd in readable:
            if fd == self._wake_r:
                continue
            worker = by_fd[fd]
            try:
                data = os.read(fd, 4096)
            except OSError:
                data = b""
            with self._lock:
                if not data:  # the worker is gone
                    self._states.pop(worker.pid, None)
                    self._pending.pop(worker.pid, None)
                    with contextlib.suppress(KeyError, OSError):
                        os.close(self._reports.pop(worker.pid))
                    if worker in self._workers:
                        self._workers.remove(worker)
                    continue
                *lines, self._pending[worker.pid] = (self._pending[worker.pid] + data).split(b"\n")
                for line in lines:
                    if line.strip() in (READY, BUSY, IDLE):
                        self._states[worker.pid] = BUSY if line.strip() == BUSY else IDLE

    def _watch(self) -> None:
        """Follow the workers' lines; keep one worker idle or starting beyond those waited for."""
        while not self._stopping.is_set():
            self._pump(WATCH_SECONDS)
            waiting = _backlog(self._socket)
            with self._lock:
                if self._stopping.is_set():
                    break
                spare = sum(1 for state in self._states.values() if state != BUSY)
                wanted = min(waiting + 1 - spare, self.max_count - len(self._workers))
                for _ in range(wanted):
                    self._spawn()
                if wanted > 0:
                    logger.info("API workers busy: %d now", len(self._workers))

    def stop(self, timeout: float = 10.0) -> None:
        """Close the workers' stdin (they exit after the request in hand); kill stragglers."""
        self._stopping.set()
        if self._wake_w >= 0:
            with contextlib.suppress(OSError):
                os.write(self._wake_w, b"x")
        if self._monitor is not None:
            self._monitor.join(timeout)
            self._monitor = None
        with self._lock:
            workers, self._workers = list(self._workers), []
            reports, self._reports = list(self._reports.values()), {}
            self._states.clear()
        stop_children(workers, timeout)
        for fd in (*reports, self._wake_r, self._wake_w):
            if fd >= 0:
                with contextlib.suppress(OSError):
                    os.close(fd)
        self._wake_r = self._wake_w = -1
        self._socket.close()


def _backlog(listening: socket.socket) -> int:
    """Connections waiting in ``listening``'s accept queue (0 where the OS does not say).

    Linux reports it as ``tcpi_unacked`` of a listening socket's ``TCP_INFO``
    (tcp(7); ``ss -l`` shows it as Recv-Q).
    """
    option = getattr(socket, "TCP_INFO", None)
    if option is None or not sys.platform.startswith("linux"):
        return 0
    try:
        info = listening.getsockopt(socket.IPPROTO_TCP, option, 104)
        return int(struct.unpack_from("8B5I", info)[12])
    except (OSError, struct.error):
        return 0


def serve(fd: int, report_fd: int) -> None:
    """Serve the API on the inherited listening socket ``fd`` until stdin closes.

    Reports ``ready``, ``busy`` and ``idle`` lines on the pipe ``report_fd``
    (module docstring); stdout stays the handlers' (their log lines).
    """
    from werkzeug.serving import make_server

    from oms_webhooks_local.api_server import HOST, QuietRequestHandler
    from oms_webhooks_local.gateway import LocalApiGateway

    listening = socket.socket(fileno=fd)
    # Non-blocking accept: when another worker took the connection first, this
    # one goes back to waiting instead of blocking in accept() (shared by all).
    listening.setblocking(False)
    port = listening.getsockname()[1]
    gateway = LocalApiGateway()
    server = make_server(
        HOST,
        port,
        gateway,
        threaded=False,  # one request at a time, as one execution environment
        request_handler=QuietRequestHandler,
        fd=fd,
    )
    report_lock = threading.Lock()

    def report(line: bytes) -> None:
        with report_lock, contextlib.suppress(OSError):
            os.write(report_fd, line + b"\n")  # one short write: never split

    serve_one = server.process_request

    def process_request(request: Any, client_address: Any) -> None:
        report(BUSY)  # the pool starts a spare worker if none is left
        try:
            serve_one(request, client_address)
            gateway.wait_for_handler()  # after a 504 the handler still holds this worker
        finally:
            report(IDLE)

    server.process_request = process_request  # type: ignore[method-assign]
    done = threading.Event()

    def watch_parent() -> None:
        while sys.stdin.buffer.read(4096):
            pass
        done.set()

    threading.Thread(target=watch_parent, name="parent-watch", daemon=True).start()
    report(READY)  # before serving: a "busy" line must never come before it
    threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.2}, name="serve", daemon=True
    ).start()
    done.wait()
    server.shutdown()  # after the request in hand
    os._exit(0)


def main(argv: list[str] | None = None) -> None:
    """``python -m oms_webhooks_local.api_workers --fd N --report-fd M``."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--fd", type=int, required=True)
    parser.add_argument("--report-fd", type=int, required=True)
    args = parser.parse_args(argv)
    signal.signal(signal.SIGINT, signal.SIG_IGN)

    def on_term(*_: Any) -> None:
        os._exit(0)

    signal.signal(signal.SIGTERM, on_term)
    logging.basicConfig(level=logging.WARNING)
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    serve(args.fd, args.report_fd)


if __name__ == "__main__":
    main()
