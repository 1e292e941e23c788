"""The whole service on one machine: moto's AWS server, provisioning, the API and workers.

:class:`LocalStack` starts, in this order (DESIGN §6):

1. the AWS endpoint on ``127.0.0.1:<aws_port>``: moto's server
   (:mod:`oms_webhooks_local.aws_server`), in a thread of this process or,
   with ``aws_process=True``, in a process of its own; with a ``state_dir``
   it restores the saved KMS keys first (:mod:`oms_webhooks_local.persistence`);
2. the process environment of a local stack: region ``us-east-1``,
   credentials ``testing``/``testing``, ``AWS_ENDPOINT_URL`` = moto, whatever
   the environment said before (:func:`local_aws_environ`), and
   ``OMS_WEBHOOKS_ALLOW_PRIVATE_TARGETS=true`` unless it is set to a false value;
3. every resource (:func:`oms_webhooks_local.provision.provision`: tables,
   queues, bus, rule), the settings only known once they exist
   (``OMS_WEBHOOKS_DELIVERY_QUEUE_URL``, exported to the process environment
   for the router; :func:`~oms_webhooks_local.provision.provisioned_environ`)
   and the development token (tenant ``dev``, ``$OMS_WEBHOOKS_DEV_TOKEN`` if set);
   With a ``state_dir``: the saved tables are loaded, the events the bus had
   accepted but the router not yet taken are queued again, snapshots start
   (every 2 s), and every pending delivery gets its message back
   (:func:`resume_pending_deliveries`);
4. the background workers (:data:`WORKER_FACTORIES`): SQS pollers feeding
   the router (ingress queue) and the dispatcher (delivery queue) as Lambda's
   event source mapping does (:mod:`oms_webhooks_local.pollers`);
5. last, the API (:class:`~oms_webhooks_local.gateway.LocalApiGateway`) on
   ``127.0.0.1:<api_port>``: it accepts connections only once all of the
   above is ready.

:meth:`LocalStack.stop` undoes it in reverse order and restores the
environment; with a ``state_dir`` it first lets the router drain the ingress
queue (events accepted by the bus are not lost) and ends with the last
snapshot. Port 0 picks a free port (read the real one from
:attr:`LocalStack.api_url` / :attr:`LocalStack.aws_endpoint_url`).

The Lambda handlers read their AWS endpoint from the process environment, as
boto3 does; a LocalStack therefore owns the process environment while it
runs, and at most one should run per process.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import re
import select
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from http import HTTPStatus
from pathlib import Path
from types import TracebackType
from typing import Any, Protocol

import requests
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

from oms_webhooks import names
from oms_webhooks.settings import get_settings
from oms_webhooks_local.api_workers import ApiWorkerPool
from oms_webhooks_local.aws_server import CONTROL_PREFIX, AwsServerThread
from oms_webhooks_local.gateway import LocalApiGateway
from oms_webhooks_local.pollers import local_pollers
from oms_webhooks_local.provision import (
    LOCAL_ACCESS_KEY_ID,
    LOCAL_REGION,
    LOCAL_SECRET_ACCESS_KEY,
    provision,
    provisioned_environ,
)

logger = logging.getLogger(__name__)

#: Where the local stack listens by default (DESIGN §6).
HOST = "127.0.0.1"
DEFAULT_API_PORT = names.DEFAULT_API_PORT
DEFAULT_AWS_PORT = names.DEFAULT_AWS_PORT
DEFAULT_AWS_ENDPOINT_URL = f"http://{HOST}:{DEFAULT_AWS_PORT}"
#: The development token's tenant, and the variable that fixes its token.
DEV_TENANT = "dev"
DEV_TOKEN_ENV = "OMS_WEBHOOKS_DEV_TOKEN"  # noqa: S105 - a variable name
#: Where ``oms-webhooks local`` keeps its state unless told (in the current directory).
DEFAULT_STATE_DIR = ".oms-webhooks-local"
#: The development token's file in the state directory (mode 0600).
DEV_TOKEN_FILE = "dev-token"  # noqa: S105 - a file name
#: Seconds a clean stop waits for the ingress queue to drain through the router.
DRAIN_SECONDS = 30.0
#: Seconds to wait for the AWS server process to listen.
AWS_PROCESS_START_SECONDS = 60.0
ALLOW_PRIVATE_ENV = "OMS_WEBHOOKS_ALLOW_PRIVATE_TARGETS"
#: Values pydantic reads as False for a boolean setting.
_FALSE_VALUES = frozenset({"0", "off", "f", "false", "n", "no"})
#: Variables that would point boto3 elsewhere or sign as someone else.
_SCRUBBED_PREFIXES = ("AWS_ENDPOINT_URL_",)
_SCRUBBED = (
    "AWS_PROFILE",
    "AWS_SESSION_TOKEN",
    "AWS_SECURITY_TOKEN",
    "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS",
)


class BackgroundWorker(Protocol):
    """Something that runs beside the API while the stack is up (e.g. one SQS poller)."""

    name: str

    def start(self) -> None:
        """Start working in the background; return at once."""

    def stop(self, timeout: float) -> None:
        """Stop and wait up to ``timeout`` seconds for in-flight work to finish."""


#: Builds the workers of a started stack (its AWS endpoint is up and provisioned).
WorkerFactory = Callable[["LocalStack"], Sequence[BackgroundWorker]]

#: The workers every stack runs: the SQS pollers (several per queue, feeding
#: the router and dispatcher handlers).
WORKER_FACTORIES: list[WorkerFactory] = [local_pollers]


def local_aws_environ(endpoint_url: str) -> dict[str, str | None]:
    """The environment changes that point boto3 at ``endpoint_url`` as moto's default account.

    Returns:
        variable → value, None meaning "unset it": region ``us-east-1``,
        credentials ``testing``/``testing``, ``AWS_ENDPOINT_URL``, and no
        profile, session token or per-service endpoint override.
    """
    changes: dict[str, str | None] = {
        "AWS_ENDPOINT_URL": endpoint_url,
        "AWS_REGION": LOCAL_REGION,
        "AWS_DEFAULT_REGION": LOCAL_REGION,
        "AWS_ACCESS_KEY_ID": LOCAL_ACCESS_KEY_ID,
        "AWS_SECRET_ACCESS_KEY": LOCAL_SECRET_ACCESS_KEY,
        # DESIGN §6: the router's subscription cache is off on the local stack.
        "OMS_WEBHOOKS_ROUTER_CACHE_SECONDS": "0",
    }
    for name in _SCRUBBED:
        changes[name] = None
    for name in os.environ:
        if name.startswith(_SCRUBBED_PREFIXES):
            changes[name] = None
    return changes


def apply_environ(changes: Mapping[str, str | None]) -> dict[str, str | None]:
    """Apply ``changes`` to ``os.environ`` (None unsets); return what to restore them with.

    Clears the cached settings (:func:`~oms_webhooks.settings.get_settings`).
    """
    previous = {name: os.environ.get(name) for name in changes}
    for name, value in changes.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value
    get_settings.cache_clear()
    return previous


@contextlib.contextmanager
def environ(changes: Mapping[str, str | None]) -> Iterator[None]:
    """Apply ``changes`` to ``os.environ`` for the ``with`` block, then restore it."""
    previous = apply_environ(changes)
    try:
        yield
    finally:
        apply_environ(previous)


def _bind(port: int) -> socket.socket:
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
    """The request read deadline: ``$OMS_WEBHOOKS_LOCAL_API_READ_SECONDS`` (> 0), else 10 s."""
    raw = os.environ.get(REQUEST_READ_SECONDS_ENV, "").strip()
    value = float(raw) if raw else REQUEST_READ_SECONDS
    if not value > 0:
        raise ValueError(f"{REQUEST_READ_SECONDS_ENV} must be > 0, not {raw}")
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


class StackError(RuntimeError):
    """The local stack could not start (a port in use, moto not answering, ...)."""


class LocalStack:
    """The local stack (module docstring); a context manager.

    Args:
        api_port: the API's port on 127.0.0.1 (0 = a free one).
        aws_port: moto's port on 127.0.0.1 (0 = a free one).
        dev_token: the development token; default ``$OMS_WEBHOOKS_DEV_TOKEN``,
            else a new random one.
        worker_factories: builders of the background workers; default
            :data:`WORKER_FACTORIES`.
        gateway_factory: builds the API's WSGI app; default
            :class:`~oms_webhooks_local.gateway.LocalApiGateway`.
        state_dir: keep the state (tables, the key that seals secrets, the
            development token) in this directory and resume from it
            (:mod:`oms_webhooks_local.persistence`); None keeps nothing.
        fresh: with ``state_dir``, start from an empty state.
        aws_process: serve moto from a process of its own
            (:mod:`oms_webhooks_local.aws_server`) instead of a thread of this one.
        api_workers: serve the API from this many worker processes at start,
            each one request at a time, more while all are busy
            (:mod:`oms_webhooks_local.api_workers`; ``oms-webhooks local``
            starts 4); 0 serves it from threads of this
            process, one request at a time (the tests' stacks, whose settings
            a test may change in this process).

    Attributes:
        api_url: ``http://127.0.0.1:<port>`` once started (no trailing slash).
        aws_endpoint_url: ``http://127.0.0.1:<port>`` of moto once started.
        dev_token: the development token (tenant ``dev``) once started.
        workers: the running background workers.
    """

    def __init__(
        self,
        *,
        api_port: int = DEFAULT_API_PORT,
        aws_port: int = DEFAULT_AWS_PORT,
        dev_token: str | None = None,
        worker_factories: Sequence[WorkerFactory] | None = None,
        gateway_factory: Callable[[], LocalApiGateway] = LocalApiGateway,
        state_dir: Path | str | None = None,
        fresh: bool = False,
        aws_process: bool = False,
        api_workers: int = 0,
    ) -> None:
        self.state_dir = None if state_dir is None else Path(state_dir).resolve()
        self._fresh = fresh
        self._aws_process = aws_process
        self._aws_thread: AwsServerThread | None = None
        self._aws_child: subprocess.Popen[bytes] | None = None
        self._state_started = False
        #: Items loaded from the state directory and delivery messages re-created at start.
        self.restored_items = 0
        self.resumed_deliveries = 0
        self.resumed_recoveries = 0
        #: Events accepted by the bus but not routed at the last stop, queued again.
        self.requeued_events = 0
        self._api_port = api_port
        self._aws_port = aws_port
        self._dev_token = dev_token
        self._worker_factories = list(
            WORKER_FACTORIES if worker_factories is None else worker_factories
        )
        self._gateway_factory = gateway_factory
        self._api: BaseWSGIServer | None = None
        self._api_workers = api_workers
        self._api_pool: ApiWorkerPool | None = None
        self._api_thread: threading.Thread | None = None
        self._saved_environ: dict[str, str | None] | None = None
        self._aws_endpoint_url: str | None = None
        self._api_url: str | None = None
        self._token: str | None = None
        self.workers: list[BackgroundWorker] = []

    # -- public state -------------------------------------------------------

    @property
    def api_url(self) -> str:
        """The API's base URL, ``http://127.0.0.1:<port>``. RuntimeError before start."""
        if self._api_url is None:
            raise RuntimeError("the local stack is not running")
        return self._api_url

    @property
    def aws_endpoint_url(self) -> str:
        """moto's endpoint, ``http://127.0.0.1:<port>``. RuntimeError before start."""
        if self._aws_endpoint_url is None:
            raise RuntimeError("the local stack is not running")
        return self._aws_endpoint_url

    @property
    def dev_token(self) -> str:
        """The development token (tenant ``dev``). RuntimeError before start."""
        if self._token is None:
            raise RuntimeError("the local stack is not running")
        return self._token

    @property
    def running(self) -> bool:
        """Whether the API is being served."""
        return self._api is not None or self._api_pool is not None

    # -- lifecycle ----------------------------------------------------------

    def start(self) -> LocalStack:
        """Start everything (module docstring); return self.

        Raises:
            StackError: a port is in use or a part failed to start; whatever
                was started is stopped again and the environment restored.
        """
        if self._saved_environ is not None:
            raise RuntimeError("the local stack is already started")
        quiet = logging.getLogger("werkzeug")
        if quiet.level == logging.NOTSET:  # moto's server logs every request at INFO
            quiet.setLevel(logging.WARNING)
        try:
            api_socket = _bind(self._api_port)
        except OSError as exc:
            raise StackError(f"cannot use API port {self._api_port}: {exc.strerror}") from exc
        try:
            self._start_aws()
            if self.state_dir is not None:
                self._control("state/restore-keys")
            self.provision()
            if self.state_dir is not None:
                loaded = self._control("state/load")
                self.restored_items = int(loaded["items"])
                self.requeued_events = int(loaded.get("events", 0))
                self._control("state/start")
                self._state_started = True
                self.resumed_deliveries = resume_pending_deliveries()
                self.resumed_recoveries = _resume_recoveries()
            self._start_workers()
            self._start_api(api_socket)
        except BaseException:
            api_socket.close()
            self.stop()
            raise
        api_socket.close()  # the server holds its own duplicate of the socket
        logger.info("local stack ready: API %s, AWS %s", self._api_url, self._aws_endpoint_url)
        return self

    def _start_aws(self) -> None:
        if self._aws_port:
            try:
                _bind(self._aws_port).close()  # moto's server would exit the thread on a taken port
            except OSError as exc:
                raise StackError(f"cannot use AWS port {self._aws_port}: {exc.strerror}") from exc
        changes: dict[str, str | None] = {}
        allow = os.environ.get(ALLOW_PRIVATE_ENV, "").strip().lower()
        if allow not in _FALSE_VALUES:
            changes[ALLOW_PRIVATE_ENV] = "true"
        if self._aws_process:
            port = self._spawn_aws_process()
        else:
            try:
                self._aws_thread = AwsServerThread(
                    self._aws_port, state_dir=self.state_dir, fresh=self._fresh
                )
            except OSError as exc:
                raise StackError(f"cannot use AWS port {self._aws_port}: {exc.strerror}") from exc
            port = self._aws_thread.port
        self._aws_endpoint_url = f"http://{HOST}:{port}"
        changes.update(local_aws_environ(self._aws_endpoint_url))
        self._saved_environ = apply_environ(changes)

    def _spawn_aws_process(self) -> int:
        """Start ``python -m oms_webhooks_local.aws_server``; return its port.

        It inherits this process's environment (so that hooks activated by
        environment variables work there too) and its own session (Ctrl-C in
        a terminal reaches only this process, which stops it in order).
        """
        command = [
            sys.executable,
            "-m",
            "oms_webhooks_local.aws_server",
            "--port",
            str(self._aws_port),
        ]
        if self.state_dir is not None:
            command += ["--state-dir", str(self.state_dir)]
            if self._fresh:
                command.append("--fresh")
        child = subprocess.Popen(  # noqa: S603 - our own module, no shell
            command,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=dict(os.environ),
            start_new_session=True,
        )
        self._aws_child = child
        assert child.stdout is not None
        ready, _, _ = select.select([child.stdout], [], [], AWS_PROCESS_START_SECONDS)
        line = child.stdout.readline() if ready else b""
        try:
            answer = json.loads(line)
        except ValueError:
            answer = {"error": "the AWS server process did not start"}
        if "port" not in answer:
            raise StackError(str(answer.get("error")))
        return int(answer["port"])

    def _control(self, operation: str) -> dict[str, Any]:
        """POST a control operation to the AWS server (:mod:`oms_webhooks_local.aws_server`)."""
        response = requests.post(f"{self.aws_endpoint_url}{CONTROL_PREFIX}{operation}", timeout=120)
        response.raise_for_status()
        answer: dict[str, Any] = response.json()
        return answer

    def aws_stats(self) -> dict[str, Any]:
        """The AWS server's ``{"pid", "cpu_s", "requests"}`` (CPU seconds, requests served)."""
        return self._control("stats")

    def provision(self) -> list[str]:
        """Create every missing resource and the development token (idempotent).

        Safe to call again on a running stack, e.g. after something reset
        moto's state (moto's in-process mocks share it with this server).

        Returns:
            one log line per resource.
        """
        lines = provision(self.aws_endpoint_url, settings=get_settings())
        self._export(provisioned_environ(self.aws_endpoint_url, settings=get_settings()))
        from oms_webhooks.api.tokens import TokenError, create_token

        wanted = self._dev_token or os.environ.get(DEV_TOKEN_ENV) or self._token
        kept = self._kept_dev_token() if not wanted else None
        try:
            _, self._token = create_token(tenant=DEV_TENANT, token=wanted or kept or None)
        except TokenError:
            if wanted or not kept:
                raise
            logger.warning("the kept development token was revoked: a new one is made")
            _, self._token = create_token(tenant=DEV_TENANT)
        self._keep_dev_token(self._token)
        return lines

    def _kept_dev_token(self) -> str | None:
        if self.state_dir is None:
            return None
        try:
            return (self.state_dir / DEV_TOKEN_FILE).read_text("utf-8").strip() or None
        except FileNotFoundError:
            return None

    def _keep_dev_token(self, token: str) -> None:
        if self.state_dir is None:
            return
        path = self.state_dir / DEV_TOKEN_FILE
        self.state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(token + "\n")

    def _export(self, changes: Mapping[str, str | None]) -> None:
        """Apply ``changes`` to the environment; :meth:`stop` restores what was there first."""
        previous = apply_environ(changes)
        if self._saved_environ is not None:
            for name, value in previous.items():
                self._saved_environ.setdefault(name, value)

    def _start_workers(self) -> None:
        for factory in self._worker_factories:
            for worker in factory(self):
                worker.start()
                self.workers.append(worker)

    def _start_api(self, api_socket: socket.socket) -> None:
        api_socket.listen(128)
        if self._api_workers:
            pool = ApiWorkerPool(api_socket, self._api_workers)
            try:
                pool.start()
            except RuntimeError as exc:
                raise StackError(str(exc)) from None
            self._api_pool = pool
            self._api_url = f"http://{HOST}:{api_socket.getsockname()[1]}"
            return
        self._api = make_server(
            HOST,
            api_socket.getsockname()[1],
            self._gateway_factory(),
            threaded=True,
            request_handler=QuietRequestHandler,
            fd=api_socket.fileno(),
        )
        self._api_url = f"http://{HOST}:{self._api.server_address[1]}"
        self._api_thread = threading.Thread(
            target=self._api.serve_forever,
            kwargs={"poll_interval": 0.1},
            name="oms-webhooks-api",
            daemon=True,
        )
        self._api_thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the API, the workers and moto (in that order) and restore the environment.

        Idempotent; ``timeout`` bounds the wait for each worker, in seconds. Workers
        with a ``request_stop()`` method are all asked to stop first, so they wind
        down together.
        """
        if self._api_pool is not None:
            self._api_pool.stop(timeout)
            self._api_pool = None
        if self._api is not None:
            self._api.shutdown()
            self._api.server_close()
            if self._api_thread is not None:
                self._api_thread.join(timeout)
            self._api = self._api_thread = None
        if self._state_started and self.workers:
            self._drain_ingress()
        for worker in self.workers:  # let them all wind down at once, then wait for each
            request_stop = getattr(worker, "request_stop", None)
            if callable(request_stop):
                request_stop()
        while self.workers:
            worker = self.workers.pop()
            try:
                worker.stop(timeout)
            except Exception:
                logger.exception("worker %s did not stop cleanly", worker.name)
        if self._state_started:
            try:
                self._control("state/stop")
            except Exception:
                logger.exception("the last snapshot failed")
            self._state_started = False
        if self._aws_thread is not None:
            self._aws_thread.stop()
            self._aws_thread = None
        if self._aws_child is not None:
            self._stop_aws_child(self._aws_child, timeout)
            self._aws_child = None
        if self._saved_environ is not None:
            apply_environ(self._saved_environ)
            self._saved_environ = None
        self._api_url = self._aws_endpoint_url = None

    def _drain_ingress(self) -> None:
        """Wait (up to :data:`DRAIN_SECONDS`) until the router has taken every ingress message."""
        from oms_webhooks.resources import INGRESS_QUEUE
        from oms_webhooks_local.pollers import sqs_client

        names = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
        try:
            sqs = sqs_client(self.aws_endpoint_url)
            url = sqs.get_queue_url(QueueName=INGRESS_QUEUE.name)["QueueUrl"]
            deadline = time.monotonic() + DRAIN_SECONDS
            while time.monotonic() < deadline:
                attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=names)
                left = sum(int(attributes["Attributes"].get(n, 0)) for n in names)
                if not left:
                    return
                time.sleep(0.2)
            logger.warning("%d events were not routed within %.0f s", left, DRAIN_SECONDS)
        except Exception:
            logger.exception("could not drain the ingress queue")

    @staticmethod
    def _stop_aws_child(child: subprocess.Popen[bytes], timeout: float) -> None:
        """Close the child's stdin (it stops), wait, and terminate it if it lingers."""
        with contextlib.suppress(OSError):
            if child.stdin is not None:
                child.stdin.close()
        try:
            child.wait(timeout)
        except subprocess.TimeoutExpired:
            child.terminate()
            try:
                child.wait(timeout)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()
        if child.stdout is not None:
            child.stdout.close()

    def __enter__(self) -> LocalStack:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def _resume_recoveries() -> int:
    """Queue again the recoveries that were running at the last stop (DESIGN §10)."""
    from oms_webhooks.aws_clients import client
    from oms_webhooks.routing.recovery import resume_running

    return resume_running(sqs=client("sqs"), queue_url=get_settings().recovery_queue_url)


def resume_pending_deliveries(now: float | None = None) -> int:
    """Re-create the delivery message of every pending delivery, due when its record says.

    After a restart the delivery queue is empty (SQS messages are not kept),
    while the deliveries table says what is still to do. Each message is
    sent with ``DelaySeconds`` = its due time minus now (0-900 s); a later
    due time comes back early and the dispatcher holds it again, as it
    does any message that is not due (:mod:`oms_webhooks.delivery.retry.scheduling`). A
    delivery that already has a message gets a second one: the dispatcher's
    claim lets only one of them make the attempt.

    Returns:
        how many messages were sent.
    """
    from oms_webhooks.aws_clients import client
    from oms_webhooks.delivery.retry.scheduling import SQS_MAX_DELAY_SECONDS
    from oms_webhooks.delivery.store import PENDING
    from oms_webhooks.storage.models import DeliveryModel
    from oms_webhooks.storage.specs import bind_tables

    bind_tables()
    queue_url = get_settings().delivery_queue_url
    now = time.time() if now is None else now
    entries: list[dict[str, Any]] = []
    sent = 0
    condition = (DeliveryModel.sk == "delivery") & (DeliveryModel.status == PENDING)
    sqs = client("sqs")

    def flush() -> None:
        nonlocal sent
        if entries:
            response = sqs.send_message_batch(QueueUrl=queue_url, Entries=list(entries))
            for failure in response.get("Failed", []):
                logger.error("could not resume a delivery: %s", failure.get("Code"))
            sent += len(response.get("Successful", []))
            entries.clear()

    for delivery in DeliveryModel.scan(condition):
        due = float(delivery.next_attempt_at or 0)
        delay = int(min(SQS_MAX_DELAY_SECONDS, max(0.0, due - now)))
        entries.append(
            {
                "Id": str(len(entries)),
                "MessageBody": json.dumps({"delivery": delivery.pk}),
                "DelaySeconds": delay,
            }
        )
        if len(entries) == 10:
            flush()
    flush()
    return sent


__all__ = [
    "DEFAULT_API_PORT",
    "DEFAULT_AWS_ENDPOINT_URL",
    "DEFAULT_AWS_PORT",
    "DEFAULT_STATE_DIR",
    "DEV_TENANT",
    "REQUEST_READ_SECONDS",
    "WORKER_FACTORIES",
    "BackgroundWorker",
    "LocalStack",
    "QuietRequestHandler",
    "StackError",
    "WorkerFactory",
    "apply_environ",
    "environ",
    "local_aws_environ",
    "resume_pending_deliveries",
]
