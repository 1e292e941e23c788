"""The local stack's AWS endpoint: moto's server, plus the keeper of its durable state.

:class:`AwsApp` is a WSGI application: every request goes to moto's own
server application (``DomainDispatcherApplication``, what ``moto_server``
runs), except the control paths under :data:`CONTROL_PREFIX`, which only
the local stack calls (POST, JSON answers):

* ``state/restore-keys`` → ``{"keys": n}``: re-create the saved KMS keys
  (before provisioning);
* ``state/load`` → ``{"items": n, "events": m}``: load the saved tables and
  send the saved ingress messages (events not yet routed) again (after provisioning);
* ``state/start``: track writes, snapshot every few seconds, save the keys;
* ``state/snapshot`` → ``{"items": n}``; ``state/stop``: the last snapshot;
* ``stats`` → ``{"pid", "cpu_s", "requests"}``: this process's CPU seconds
  and the AWS requests served (for benchmarks).

The state (:class:`~oms_webhooks_local.persistence.LocalState`) lives in the
process that holds moto's backends, which is this server's. It runs either
as a thread of the caller (:class:`AwsServerThread`; the tests' stacks) or
in a process of its own (``python -m oms_webhooks_local.aws_server``; the
``oms-webhooks local`` command), so that moto's work has a core and a GIL
of its own. The process prints one JSON line ``{"port": N}`` on stdout once
it listens, ignores SIGINT (the parent stops it in order), takes the last
snapshot and exits on SIGTERM or when its stdin closes (the parent is gone,
even after a ``kill -9``).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import select
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from werkzeug.serving import BaseWSGIServer, make_server

from oms_webhooks_local import moto_speedups
from oms_webhooks_local.api_server import HOST
from oms_webhooks_local.errors import StackError
from oms_webhooks_local.moto_dynamodb import serialise_dynamodb
from oms_webhooks_local.persistence import LocalState

logger = logging.getLogger(__name__)

#: Paths the local stack's control calls use (never moto's).
CONTROL_PREFIX = "/_oms_local/"
#: Seconds to wait for the AWS server process to listen.
PROCESS_START_SECONDS = 60.0


class AwsApp:
    """moto's WSGI application plus the control paths (module docstring).

    Args:
        state_dir: where the durable state lives; None keeps nothing.
        fresh: start from an empty state directory.
        owner_pid: the pid of the stack it serves (named if another is refused).
    """

    def __init__(
        self, state_dir: Path | None = None, *, fresh: bool = False, owner_pid: int | None = None
    ) -> None:
        from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

        serialise_dynamodb()  # moto's transactions are not atomic across its threads
        moto_speedups.install()
        self._moto = DomainDispatcherApplication(create_backend_app)
        self.state = (
            LocalState(state_dir, fresh=fresh, owner_pid=owner_pid)
            if state_dir is not None
            else None
        )
        self.requests = 0
        self._count_lock = threading.Lock()

    def __call__(
        self, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        """The WSGI entry point."""
        path = str(environ.get("PATH_INFO", ""))
        if path.startswith(CONTROL_PREFIX):
            return self._control(path[len(CONTROL_PREFIX) :], environ, start_response)
        with self._count_lock:
            self.requests += 1
        result: Iterable[bytes] = self._moto(environ, start_response)
        return result

    def control(self, operation: str) -> dict[str, Any]:
        """Run one control operation (module docstring); KeyError if unknown."""
        if operation == "stats":
            times = os.times()
            return {
                "pid": os.getpid(),
                "cpu_s": times.user + times.system,
                "requests": self.requests,
            }
        state = self.state
        if state is None:
            return {"state": None}
        if operation == "state/restore-keys":
            return {"keys": state.restore_keys()}
        if operation == "state/load":
            items = state.load_tables()
            return {"items": items, "events": state.requeued}
        if operation == "state/start":
            state.start()
            return {"keys": state.save_keys()}
        if operation == "state/snapshot":
            return {"items": state.snapshot()}
        if operation == "state/stop":
            state.stop()
            return {"stopped": True}
        raise KeyError(operation)

    def _control(
        self, operation: str, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        status = "200 OK"
        try:
            if environ.get("REQUEST_METHOD") != "POST":
                status, body = "405 Method Not Allowed", {"error": "POST only"}
            else:
                body = self.control(operation)
        except KeyError:
            status, body = "404 Not Found", {"error": f"no control operation {operation!r}"}
        except Exception as exc:
            logger.exception("control %s failed", operation)
            status, body = "500 Internal Server Error", {"error": type(exc).__name__}
        data = json.dumps(body).encode("utf-8")
        start_response(
            status, [("Content-Type", "application/json"), ("Content-Length", str(len(data)))]
        )
        return [data]


def make_aws_server(app: AwsApp, port: int) -> BaseWSGIServer:
    """A threaded werkzeug server for ``app`` on ``127.0.0.1:port`` (OSError if taken)."""
    from moto.moto_server.werkzeug_app import MotoRequestHandler

    return make_server(HOST, port, app, threaded=True, request_handler=MotoRequestHandler)


class AwsServerThread:
    """The AWS endpoint served by a thread of this process (like moto's ``ThreadedMotoServer``)."""

    def __init__(self, port: int, *, state_dir: Path | None = None, fresh: bool = False) -> None:
        self.app = AwsApp(state_dir, fresh=fresh)
        try:
            self._server = make_aws_server(self.app, port)
        except BaseException:  # (werkzeug exits on a taken port): let go of the directory
            if self.app.state is not None:
                self.app.state.release()
            raise
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.1},
            name="oms-webhooks-aws",
            daemon=True,
        )
        self._thread.start()

    @property
    def port(self) -> int:
        """The port it listens on."""
        return int(self._server.server_address[1])

    def stop(self) -> None:
        """Stop serving (the state is stopped by the ``state/stop`` control call)."""
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(10.0)
        if self.app.state is not None:
            self.app.state.release()


def control(endpoint_url: str, operation: str) -> dict[str, Any]:
    """POST a control operation (``state/load``, ``stats``...) to the AWS server.

    Raises:
        requests.HTTPError: the server refused it.
    """
    import requests

    response = requests.post(f"{endpoint_url}{CONTROL_PREFIX}{operation}", timeout=120)
    response.raise_for_status()
    answer: dict[str, Any] = response.json()
    return answer


def spawn_process(
    port: int, state_dir: Path | None, *, fresh: bool = False
) -> tuple[subprocess.Popen[bytes], dict[str, Any]]:
    """Start ``python -m oms_webhooks_local.aws_server``; return it and its first answer.

    The answer is ``{"port": <port>}`` once it serves, else ``{"error": <why>}``
    (:data:`PROCESS_START_SECONDS` without an answer is an error).

    It inherits this process's environment (so that hooks activated by
    environment variables work there too) and its own session (Ctrl-C in
    a terminal reaches only this process, which stops it in order).
    """
    command = [
        sys.executable,
        "-m",
        "oms_webhooks_local.aws_server",
        "--port",
        str(port),
    ]
    if state_dir is not None:
        command += ["--state-dir", str(state_dir), "--owner-pid", str(os.getpid())]
        if fresh:
            command.append("--fresh")
    child = subprocess.Popen(  # noqa: S603 - our own module, no shell
        command,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        env=dict(os.environ),
        start_new_session=True,
    )
    assert child.stdout is not None
    ready, _, _ = select.select([child.stdout], [], [], PROCESS_START_SECONDS)
    line = child.stdout.readline() if ready else b""
    try:
        answer = json.loads(line)
    except ValueError:
        answer = {"error": "the AWS server process did not start"}
    return child, answer


def main(argv: list[str] | None = None) -> None:
    """``python -m oms_webhooks_local.aws_server --port N [--state-dir D --owner-pid P] [--fresh]``.

    ``--owner-pid``: the stack's process, named to another stack refused the directory.
    """
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--state-dir", type=Path, default=None)
    parser.add_argument("--fresh", action="store_true")
    parser.add_argument("--owner-pid", type=int, default=None)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="aws-server: %(levelname)s %(message)s")
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # moto logs every request at INFO
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        app = AwsApp(args.state_dir, fresh=args.fresh, owner_pid=args.owner_pid)
    except StackError as exc:
        print(json.dumps({"error": str(exc)}), flush=True)
        sys.exit(1)
    try:
        server = make_aws_server(app, args.port)
    except OSError as exc:
        print(json.dumps({"error": f"cannot use AWS port {args.port}: {exc.strerror}"}), flush=True)
        sys.exit(1)
    done = threading.Event()

    def finish(*_: Any) -> None:
        done.set()

    signal.signal(signal.SIGTERM, finish)

    def watch_parent() -> None:
        while sys.stdin.buffer.read(4096):
            pass
        done.set()

    threading.Thread(target=watch_parent, name="parent-watch", daemon=True).start()
    threading.Thread(target=server.serve_forever, name="serve", daemon=True).start()
    print(json.dumps({"port": server.server_address[1], "pid": os.getpid()}), flush=True)
    done.wait()
    if app.state is not None:
        try:
            app.state.stop()  # once: nothing more after the stack's state/stop
        except Exception:
            logger.exception("last snapshot failed")
    os._exit(0)


if __name__ == "__main__":
    main()
