"""The local API served by several processes, as several Lambda execution environments would.

On AWS, API Gateway runs each request in an execution environment of the api
function that serves one request at a time, and starts more environments for
requests that arrive meanwhile: a slow request (a ping to a partner that
takes 10 s to answer) never delays another tenant's. Powertools' resolver
keeps the current event in class-level state (``BaseRouter.current_event``),
so one process can serve only one request at a time; the local stack
therefore runs :data:`DEFAULT_API_WORKERS` worker processes
(``python -m oms_webhooks.local.api_workers``), each with its own resolver
(the real authorizer and api handlers behind
:class:`~oms_webhooks.local.gateway.LocalApiGateway`), each talking to the
AWS endpoint over HTTP only.

They share one listening socket (inherited as a file descriptor): each
worker serves one connection at a time (HTTP/1.0, closed after the answer)
and accepts the next only once it is free, so the kernel hands a new
connection to an idle worker. With every worker busy, a request waits in the
socket's backlog, as a request would wait for a free environment at
Lambda's concurrency limit.

A worker inherits the environment of the process that starts it (the local
stack's AWS endpoint, credentials and settings, and any hook activated by an
environment variable), prints ``ready`` on stdout once its handlers are
imported, ignores SIGINT (its parent stops it) and exits when its stdin
closes (the parent stopped it, or is gone).
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import select
import signal
import socket
import subprocess
import sys
import threading
from typing import Any

logger = logging.getLogger(__name__)

#: Worker processes of ``oms-webhooks local`` (concurrent API requests).
DEFAULT_API_WORKERS = 4
#: Seconds to wait for a worker to import its handlers.
WORKER_START_SECONDS = 120.0


class ApiWorkerPool:
    """``count`` API worker processes serving ``listening`` (a bound, listening socket).

    Implements the part of the stack's lifecycle the API needs: :meth:`start`
    returns once every worker is ready; :meth:`stop` ends them.
    """

    def __init__(self, listening: socket.socket, count: int = DEFAULT_API_WORKERS) -> None:
        if count < 1:
            raise ValueError("an API worker pool needs at least one worker")
        self._socket = listening
        self._count = count
        self._workers: list[subprocess.Popen[bytes]] = []

    def start(self) -> None:
        """Start the workers; wait until each has imported its handlers.

        Raises:
            RuntimeError: a worker did not become ready (the others are stopped).
        """
        fd = self._socket.fileno()
        command = [sys.executable, "-m", "oms_webhooks.local.api_workers", "--fd", str(fd)]
        try:
            for _ in range(self._count):
                self._workers.append(
                    subprocess.Popen(  # noqa: S603 - our own module, no shell
                        command,
                        stdin=subprocess.PIPE,
                        stdout=subprocess.PIPE,
                        pass_fds=(fd,),
                        env=dict(os.environ),
                        start_new_session=True,
                    )
                )
            for worker in self._workers:
                assert worker.stdout is not None
                ready, _, _ = select.select([worker.stdout], [], [], WORKER_START_SECONDS)
                if not ready or worker.stdout.readline().strip() != b"ready":
                    raise RuntimeError("an API worker process did not start")
        except BaseException:
            self.stop()
            raise

    @property
    def pids(self) -> list[int]:
        """The workers' process ids."""
        return [worker.pid for worker in self._workers]

    def stop(self, timeout: float = 10.0) -> None:
        """Close the workers' stdin (they exit after the request in hand); terminate stragglers."""
        for worker in self._workers:
            with contextlib.suppress(OSError):
                if worker.stdin is not None:
                    worker.stdin.close()
        for worker in self._workers:
            try:
                worker.wait(timeout)
            except subprocess.TimeoutExpired:
                worker.kill()
                worker.wait()
            if worker.stdout is not None:
                worker.stdout.close()
        self._workers = []


def serve(fd: int) -> None:
    """Serve the API on the inherited listening socket ``fd`` until stdin closes."""
    from werkzeug.serving import make_server

    from oms_webhooks.local.gateway import LocalApiGateway
    from oms_webhooks.local.stack import HOST, QuietRequestHandler

    listening = socket.socket(fileno=fd)
    # Non-blocking accept: when another worker took the connection first, this
    # one goes back to waiting instead of blocking in accept() (shared by all).
    listening.setblocking(False)
    port = listening.getsockname()[1]
    server = make_server(
        HOST,
        port,
        LocalApiGateway(),
        threaded=False,  # one request at a time, as one execution environment
        request_handler=QuietRequestHandler,
        fd=fd,
    )
    done = threading.Event()

    def watch_parent() -> None:
        while sys.stdin.buffer.read(4096):
            pass
        done.set()

    threading.Thread(target=watch_parent, name="parent-watch", daemon=True).start()
    threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.2}, name="serve", daemon=True
    ).start()
    sys.stdout.write("ready\n")
    sys.stdout.flush()
    done.wait()
    server.shutdown()  # after the request in hand
    os._exit(0)


def main(argv: list[str] | None = None) -> None:
    """``python -m oms_webhooks.local.api_workers --fd N``."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--fd", type=int, required=True)
    args = parser.parse_args(argv)
    signal.signal(signal.SIGINT, signal.SIG_IGN)

    def on_term(*_: Any) -> None:
        os._exit(0)

    signal.signal(signal.SIGTERM, on_term)
    logging.basicConfig(level=logging.WARNING)
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    serve(args.fd)


if __name__ == "__main__":
    main()
