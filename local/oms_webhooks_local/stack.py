"""The whole service on one machine: moto's AWS server, provisioning, the API and workers.

:class:`LocalStack` starts, in this order (DESIGN §6):

1. the AWS endpoint on ``127.0.0.1:<aws_port>``: moto's server
   (:mod:`oms_webhooks_local.aws_server`), in a thread of this process or,
   with ``aws_process=True``, in a process of its own; with a ``state_dir``
   it restores the saved KMS keys first (:mod:`oms_webhooks_local.persistence`);
2. the process environment of a local stack: region ``us-east-1``,
   credentials ``testing``/``testing``, ``AWS_ENDPOINT_URL`` = moto, whatever
   the environment said before (:func:`~oms_webhooks_local.environment.local_aws_environ`), and
   ``OMS_WEBHOOKS_ALLOW_PRIVATE_TARGETS=true`` unless it is set to a false value;
3. every resource (:func:`oms_webhooks_local.provision.provision`: tables,
   queues, bus, rule), the settings only known once they exist
   (``OMS_WEBHOOKS_DELIVERY_QUEUE_URL``, exported to the process environment
   for the router; :func:`~oms_webhooks_local.provision.provisioned_environ`)
   and the development token (tenant ``dev``, ``$OMS_WEBHOOKS_DEV_TOKEN`` if set);
   With a ``state_dir``: the saved tables are loaded, the events the bus had
   accepted but the router not yet taken are queued again, snapshots start
   (every 2 s), and every pending delivery gets its message back
   (:func:`~oms_webhooks_local.restart.resume_pending_deliveries`);
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

import logging
import os
import socket
import subprocess
import threading
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, Protocol

from werkzeug.serving import BaseWSGIServer

from oms_webhooks import names
from oms_webhooks.settings import get_settings
from oms_webhooks_local.api_server import HOST, bind, request_read_seconds, serve_in_threads
from oms_webhooks_local.api_workers import ApiWorkerPool
from oms_webhooks_local.aws_server import AwsServerThread, control, spawn_process
from oms_webhooks_local.children import stop_children
from oms_webhooks_local.environment import (
    allow_private_environ,
    apply_environ,
    local_aws_environ,
)
from oms_webhooks_local.errors import StackError
from oms_webhooks_local.gateway import LocalApiGateway
from oms_webhooks_local.lanes import local_pollers
from oms_webhooks_local.provision import provision, provisioned_environ
from oms_webhooks_local.restart import (
    DEV_TENANT,
    dev_token,
    drain_ingress,
    resume_pending_deliveries,
    resume_recoveries,
)

logger = logging.getLogger(__name__)

#: Where the local stack listens by default (DESIGN §6), on :data:`HOST`.
DEFAULT_API_PORT = names.DEFAULT_API_PORT
DEFAULT_AWS_PORT = names.DEFAULT_AWS_PORT
DEFAULT_AWS_ENDPOINT_URL = f"http://{HOST}:{DEFAULT_AWS_PORT}"
#: The variable that fixes the development token (tenant :data:`DEV_TENANT`).
DEV_TOKEN_ENV = "OMS_WEBHOOKS_DEV_TOKEN"  # noqa: S105 - a variable name
#: Where ``oms-webhooks local`` keeps its state unless told (in the current directory).
DEFAULT_STATE_DIR = ".oms-webhooks-local"


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
        try:
            request_read_seconds()  # else every API connection would fail on it
        except ValueError as exc:
            raise StackError(str(exc)) from None
        quiet = logging.getLogger("werkzeug")
        if quiet.level == logging.NOTSET:  # moto's server logs every request at INFO
            quiet.setLevel(logging.WARNING)
        try:
            api_socket = bind(self._api_port)
        except OSError as exc:
            raise StackError(f"cannot use API port {self._api_port}: {exc.strerror}") from exc
        try:
            self._start_aws()
            if self.state_dir is not None:
                control(self.aws_endpoint_url, "state/restore-keys")
            self.provision()
            if self.state_dir is not None:
                loaded = control(self.aws_endpoint_url, "state/load")
                self.restored_items = int(loaded["items"])
                self.requeued_events = int(loaded.get("events", 0))
                control(self.aws_endpoint_url, "state/start")
                self._state_started = True
                self.resumed_deliveries = resume_pending_deliveries()
                self.resumed_recoveries = resume_recoveries()
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
                bind(self._aws_port).close()  # moto's server would exit the thread on a taken port
            except OSError as exc:
                raise StackError(f"cannot use AWS port {self._aws_port}: {exc.strerror}") from exc
        changes = allow_private_environ()
        if self._aws_process:
            self._aws_child, answer = spawn_process(
                self._aws_port, self.state_dir, fresh=self._fresh
            )
            if "port" not in answer:
                raise StackError(str(answer.get("error")))
            port = int(answer["port"])
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

    def aws_stats(self) -> dict[str, Any]:
        """The AWS server's ``{"pid", "cpu_s", "requests"}`` (CPU seconds, requests served)."""
        return control(self.aws_endpoint_url, "stats")

    def provision(self) -> list[str]:
        """Create every missing resource and the development token (idempotent).

        Safe to call again on a running stack, e.g. after something reset
        moto's state (moto's in-process mocks share it with this server).

        Returns:
            one log line per resource.
        """
        lines = provision(self.aws_endpoint_url, settings=get_settings())
        self._export(provisioned_environ(self.aws_endpoint_url, settings=get_settings()))
        wanted = self._dev_token or os.environ.get(DEV_TOKEN_ENV) or self._token
        self._token = dev_token(self.state_dir, wanted)
        return lines

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
        self._api, self._api_thread = serve_in_threads(api_socket, self._gateway_factory())
        self._api_url = f"http://{HOST}:{self._api.server_address[1]}"

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
            drain_ingress(self.aws_endpoint_url)
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
                control(self.aws_endpoint_url, "state/stop")
            except Exception:
                logger.exception("the last snapshot failed")
            self._state_started = False
        if self._aws_thread is not None:
            self._aws_thread.stop()
            self._aws_thread = None
        if self._aws_child is not None:
            stop_children([self._aws_child], timeout)
            self._aws_child = None
        if self._saved_environ is not None:
            apply_environ(self._saved_environ)
            self._saved_environ = None
        self._api_url = self._aws_endpoint_url = None

    def __enter__(self) -> LocalStack:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


__all__ = [
    "DEFAULT_API_PORT",
    "DEFAULT_AWS_ENDPOINT_URL",
    "DEFAULT_AWS_PORT",
    "DEFAULT_STATE_DIR",
    "DEV_TENANT",
    "WORKER_FACTORIES",
    "BackgroundWorker",
    "LocalStack",
    "StackError",
    "WorkerFactory",
]
