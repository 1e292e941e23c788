"""Shared plumbing of the benchmarks in ``bench/`` (one script per benchmark).

Every benchmark script:

* takes ``--n N`` (the size of the run; a tiny N for the smoke test);
* measures its figures *and* a baseline in the same run;
* prints exactly one JSON object on one line on stdout (:func:`emit`) with the
  keys ``benchmark``, its figures, ``baseline``, ``ratio``, ``n`` and
  ``versions``.

What the product prints (Powertools JSON logs and EMF metrics go to stdout,
as in Lambda) would mix with that line, so importing this module points file
descriptor 1 at a log file (``$BENCH_LOG``, default ``os.devnull``) and keeps
the real stdout for :func:`emit` alone. Logging still happens (its cost is
part of what is measured), it just does not reach the terminal.

Benchmarks only ever connect to 127.0.0.1: :func:`install_loopback_guard`
(called on import) makes any other ``connect`` in this process raise, and
the local stack, receivers and baselines all listen on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import contextlib
import ipaddress
import json
import math
import os
import platform
import socket
import statistics
import sys
import threading
import time
import uuid
import warnings
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import metadata
from pathlib import Path
from typing import Any

#: Repository root (``bench/_common.py`` → ``..``).
REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

HOST = "127.0.0.1"

# -- stdout: one JSON line for us, the product's logs elsewhere ---------------

_REAL_STDOUT_FD = os.dup(1)
_log_fd = os.open(os.environ.get("BENCH_LOG") or os.devnull, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
os.dup2(_log_fd, 1)
os.close(_log_fd)
# Quiet defaults unless the caller chose otherwise; INFO is what a deployment logs.
os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "INFO")
os.environ.setdefault("POWERTOOLS_METRICS_NAMESPACE", "OmsWebhooksBench")
warnings.filterwarnings("ignore", message="No application metrics to publish")


def log_path() -> str:
    """Where the product's stdout (its logs) goes in this run."""
    return os.environ.get("BENCH_LOG") or os.devnull


def note(message: str) -> None:
    """A progress line on stderr (never on stdout)."""
    print(f"[bench] {message}", file=sys.stderr, flush=True)


# -- loopback only -------------------------------------------------------------

_real_connect = socket.socket.connect
_real_connect_ex = socket.socket.connect_ex


class NonLoopbackConnection(RuntimeError):
    """A benchmark tried to connect somewhere other than loopback."""


def _check(sock: socket.socket, address: Any) -> None:
    if sock.family not in (socket.AF_INET, socket.AF_INET6):
        return
    host = address[0] if isinstance(address, tuple) and address else address
    try:
        loopback = ipaddress.ip_address(str(host).split("%", 1)[0]).is_loopback
    except ValueError:
        loopback = str(host).lower() == "localhost"
    if not loopback:
        raise NonLoopbackConnection(f"benchmarks only connect to 127.0.0.1, not {host!r}")


def _guarded_connect(self: socket.socket, address: Any) -> None:
    _check(self, address)
    return _real_connect(self, address)


def _guarded_connect_ex(self: socket.socket, address: Any) -> int:
    _check(self, address)
    return _real_connect_ex(self, address)


def install_loopback_guard() -> None:
    """Make every TCP connect of this process to a non-loopback address raise."""
    socket.socket.connect = _guarded_connect  # type: ignore[method-assign]
    socket.socket.connect_ex = _guarded_connect_ex  # type: ignore[method-assign]


install_loopback_guard()


# -- arguments, statistics, output --------------------------------------------


def parse_args(
    description: str,
    default_n: int,
    extra: Callable[[argparse.ArgumentParser], None] | None = None,
) -> argparse.Namespace:
    """Parse ``--n`` (default ``default_n``) and whatever ``extra`` adds."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--n", type=int, default=default_n, help=f"run size (default {default_n})")
    if extra is not None:
        extra(parser)
    args = parser.parse_args()
    if args.n < 1:
        parser.error("--n must be ≥ 1")
    return args


def percentile(values: Sequence[float], p: float) -> float | None:
    """The ``p``-th percentile (0-100) by linear interpolation; None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = (len(ordered) - 1) * p / 100
    low, high = math.floor(rank), math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def summary(values: Sequence[float], digits: int = 3) -> dict[str, float | int | None]:
    """``count``, ``mean``, ``p50``, ``p90``, ``p99`` and ``max`` of ``values``, rounded."""

    def r(value: float | None) -> float | None:
        return None if value is None else round(value, digits)

    return {
        "count": len(values),
        "mean": r(statistics.fmean(values)) if values else None,
        "p50": r(percentile(values, 50)),
        "p90": r(percentile(values, 90)),
        "p99": r(percentile(values, 99)),
        "max": r(max(values)) if values else None,
    }


def ratio(value: float | None, baseline: float | None, digits: int = 3) -> float | None:
    """``value / baseline`` rounded, or None when either is missing or the baseline is 0."""
    if value is None or not baseline:
        return None
    return round(value / baseline, digits)


def versions() -> dict[str, str]:
    """Versions of what the figures depend on."""

    def version(dist: str) -> str:
        try:
            return metadata.version(dist)
        except metadata.PackageNotFoundError:
            return "not installed"

    return {
        "python": platform.python_version(),
        "boto3": version("boto3"),
        "botocore": version("botocore"),
        "moto": version("moto"),
        "powertools": version("aws-lambda-powertools"),
        "pynamodb": version("pynamodb"),
        "oms_webhooks": version("oms-webhooks"),
    }


def emit(benchmark: str, *, n: int, baseline: Any, ratio: float | None, **figures: Any) -> None:
    """Print the benchmark's one JSON line on the real stdout."""
    record = {
        "benchmark": benchmark,
        **figures,
        "baseline": baseline,
        "ratio": ratio,
        "n": n,
        "versions": versions(),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
    }
    line = json.dumps(record, separators=(",", ":"), sort_keys=False) + "\n"
    os.write(_REAL_STDOUT_FD, line.encode("utf-8"))


@contextlib.contextmanager
def stopwatch() -> Iterator[Callable[[], float]]:
    """``with stopwatch() as elapsed: ...``; ``elapsed()`` is seconds since the start."""
    started = time.perf_counter()
    yield lambda: time.perf_counter() - started


def wait_until(predicate: Callable[[], Any], timeout: float, interval: float = 0.02) -> bool:
    """Poll ``predicate`` until it is truthy (True) or ``timeout`` seconds passed (False)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return bool(predicate())


# -- the local stack, receivers, subscriptions --------------------------------


@contextlib.contextmanager
def local_stack(
    *,
    pollers: bool = True,
    env: Mapping[str, str] | None = None,
    worker_factories: Any = None,
    aws_process: bool = False,
) -> Iterator[Any]:
    """A :class:`~oms_webhooks_local.stack.LocalStack` on free 127.0.0.1 ports.

    ``env`` is applied before the stack starts (e.g. a short read timeout);
    ``pollers=False`` runs no SQS pollers, so nothing but the benchmark
    touches the queues; ``worker_factories`` replaces the default workers;
    ``aws_process=True`` serves moto from a process of its own, as
    ``oms-webhooks local`` does (its CPU: ``stack.aws_stats()``).
    """
    from oms_webhooks.settings import get_settings
    from oms_webhooks_local.stack import LocalStack

    saved = {name: os.environ.get(name) for name in (env or {})}
    os.environ.update(env or {})
    get_settings.cache_clear()
    factories = worker_factories if worker_factories is not None else (None if pollers else [])
    stack = LocalStack(api_port=0, aws_port=0, worker_factories=factories, aws_process=aws_process)
    try:
        stack.start()
        for url in (stack.api_url, stack.aws_endpoint_url):
            if not url.startswith(f"http://{HOST}:"):
                raise NonLoopbackConnection(f"local stack not on {HOST}: {url}")
        yield stack
    finally:
        stack.stop(timeout=5.0)
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        get_settings.cache_clear()


@dataclass(frozen=True)
class Arrival:
    """One request as :class:`FastReceiver` saw it (``received_at`` is ``time.monotonic()``)."""

    path: str
    headers: dict[str, str]
    body: bytes
    received_at: float


class _FastHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    server: _FastServer

    def log_message(self, format: str, *args: Any) -> None:
        """No access log."""

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        arrival = Arrival(self.path, dict(self.headers.items()), body, time.monotonic())
        status, delay = self.server.owner._record(arrival)
        if delay:
            time.sleep(delay)
        # Status line, headers and body in ONE send: split small writes meet the
        # client's delayed ACK (Nagle) and cost ~40 ms per response on Linux.
        payload = b"ok"
        head = (
            f"HTTP/1.1 {status} X\r\nContent-Type: text/plain\r\n"
            f"Content-Length: {len(payload)}\r\n\r\n"
        ).encode("ascii")
        self.wfile.write(head + payload)

    do_PUT = do_GET = do_POST


class _FastServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    owner: FastReceiver

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Clients hanging up (timeouts) are expected."""


class FastReceiver:
    """A partner endpoint on 127.0.0.1 that answers in one TCP write, with TCP_NODELAY.

    ``tests/receivers.py``'s ``Receiver`` writes the headers and the body
    in two sends, which on a kept-alive connection adds ~40 ms per request
    (Nagle vs delayed ACK): fine for tests, wrong for timing. ``responder``
    maps an :class:`Arrival` to ``(status, delay seconds)``; default
    ``(200, 0)``. :attr:`requests` lists arrivals in order.
    """

    def __init__(self, responder: Callable[[Arrival], tuple[int, float]] | None = None) -> None:
        self.responder = responder or (lambda _arrival: (200, 0.0))
        self._lock = threading.Lock()
        self._requests: list[Arrival] = []
        self._server = _FastServer((HOST, 0), _FastHandler)
        self._server.owner = self
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()

    def _record(self, arrival: Arrival) -> tuple[int, float]:
        with self._lock:
            self._requests.append(arrival)
        return self.responder(arrival)

    @property
    def requests(self) -> list[Arrival]:
        """A snapshot of the arrivals so far."""
        with self._lock:
            return list(self._requests)

    def url(self, path: str = "/") -> str:
        """``http://127.0.0.1:<port><path>``."""
        return f"http://{HOST}:{self._server.server_address[1]}{path}"

    def stop(self) -> None:
        """Stop serving."""
        self._server.shutdown()
        self._server.server_close()


def receiver(
    responder: Callable[[Arrival], tuple[int, float]] | None = None,
) -> FastReceiver:
    """A started :class:`FastReceiver` (stop it yourself)."""
    return FastReceiver(responder)


def subscribe(tenant: str, event_type: str, target_url: str, **fields: Any) -> Any:
    """Create a subscription directly (no API round trip); returns the model."""
    from oms_webhooks.api.schemas import SubscriptionIn
    from oms_webhooks.subscriptions.service import create_subscription

    if not target_url.startswith(f"http://{HOST}:"):
        raise NonLoopbackConnection(f"target not on {HOST}: {target_url}")
    body = SubscriptionIn(event_type=event_type, target_url=target_url, **fields)
    return create_subscription(tenant, body)


# -- router input --------------------------------------------------------------------


def eventbridge_event(event_type: str, detail: Mapping[str, Any]) -> dict[str, Any]:
    """One EventBridge event of ``event_type`` (source ``oms``, moto's account and region)."""
    from oms_webhooks import names

    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": event_type,
        "source": "oms",
        "account": names.LOCAL_ACCOUNT_ID,
        "time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": names.LOCAL_REGION,
        "resources": [],
        "detail": dict(detail),
    }


def router_sqs_event(event_type: str, detail: Mapping[str, Any]) -> dict[str, Any]:
    """The router's Lambda SQS event for one event, as the local pollers build it.

    (:func:`oms_webhooks_local.pollers.lambda_sqs_record` of an ingress queue message.)
    """
    from oms_webhooks import names
    from oms_webhooks.resources import INGRESS_QUEUE
    from oms_webhooks_local.pollers import lambda_sqs_record

    message = {
        "MessageId": str(uuid.uuid4()),
        "ReceiptHandle": f"bench-{uuid.uuid4().hex}",
        "Body": json.dumps(eventbridge_event(event_type, detail)),
        "Attributes": {
            "ApproximateReceiveCount": "1",
            "SentTimestamp": str(int(time.time() * 1000)),
        },
    }
    arn = f"arn:aws:sqs:{names.LOCAL_REGION}:{names.LOCAL_ACCOUNT_ID}:{INGRESS_QUEUE.name}"
    return {"Records": [lambda_sqs_record(message, arn, names.LOCAL_REGION)]}


# -- counting AWS API calls ---------------------------------------------------


@dataclass
class ApiCall:
    """One AWS API call seen by botocore in this process."""

    service: str
    operation: str
    thread: str
    params: dict[str, Any]
    response: dict[str, Any]
    seconds: float = 0.0
    at: float = field(default_factory=time.monotonic)


class ApiCallRecorder:
    """Records every botocore API call of this process (boto3 and PynamoDB alike).

    This process only, whichever thread: for the calls of several processes
    and who made them, see ``oms_webhooks/aws_call_log.py`` and
    ``bench/aws_cost.py``.

    PynamoDB builds its own botocore clients, so instead of registering
    event hooks client by client this wraps
    ``botocore.client.BaseClient._make_api_call``, which every client of
    every session goes through. Use as a context manager; :attr:`calls`
    holds what was seen while it was active.
    """

    def __init__(self) -> None:
        self.calls: list[ApiCall] = []
        self._lock = threading.Lock()
        self._original: Any = None

    def __enter__(self) -> ApiCallRecorder:
        from botocore.client import BaseClient

        self._original = original = BaseClient._make_api_call
        recorder = self

        def _make_api_call(client: Any, operation_name: str, api_params: dict[str, Any]) -> Any:
            started = time.perf_counter()
            response = original(client, operation_name, api_params)
            call = ApiCall(
                seconds=time.perf_counter() - started,
                service=client.meta.service_model.service_name,
                operation=operation_name,
                thread=threading.current_thread().name,
                params=api_params,
                response=response if isinstance(response, dict) else {},
            )
            with recorder._lock:
                recorder.calls.append(call)
            return response

        BaseClient._make_api_call = _make_api_call  # type: ignore[method-assign]
        return self

    def __exit__(self, *exc: object) -> None:
        from botocore.client import BaseClient

        BaseClient._make_api_call = self._original  # type: ignore[method-assign]

    def clear(self) -> None:
        """Forget what was recorded so far."""
        with self._lock:
            self.calls.clear()

    def snapshot(self) -> list[ApiCall]:
        """A copy of the calls recorded so far."""
        with self._lock:
            return list(self.calls)

    @staticmethod
    def count(calls: Sequence[ApiCall]) -> dict[str, int]:
        """``"service:Operation" → calls``, sorted by name."""
        counted = Counter(f"{c.service}:{c.operation}" for c in calls)
        return dict(sorted(counted.items()))


# -- publishing and arrivals ---------------------------------------------------


def publish_paced(
    event_type: str,
    details: Sequence[dict[str, Any]],
    *,
    rate: float | None = None,
) -> dict[int, float]:
    """Publish ``details`` on the local bus (PutEvents, 10 entries a call).

    With ``rate`` (events per second) the calls are spread so that event i
    goes out at i / rate seconds; without, as fast as possible. Returns
    ``details[i]["seq"] → time.monotonic()`` just before its PutEvents call.
    """
    from oms_webhooks_local.publisher import events_client, publish_events

    client = events_client()
    if not str(client.meta.endpoint_url).startswith(f"http://{HOST}:"):
        raise NonLoopbackConnection(f"EventBridge not on {HOST}: {client.meta.endpoint_url}")
    sent: dict[int, float] = {}
    chunk = 1 if rate else 10
    started = time.monotonic()
    for start in range(0, len(details), chunk):
        if rate:
            time.sleep(max(0.0, started + start / rate - time.monotonic()))
        batch = details[start : start + chunk]
        at = time.monotonic()
        publish_events([{"event_type": event_type, "detail": d} for d in batch], client=client)
        for detail in batch:
            sent[int(detail["seq"])] = at
    return sent


def arrivals(requests: Sequence[Any], run: str) -> dict[int, float]:
    """First arrival time (monotonic) per ``seq`` of the deliveries of ``run``.

    Reads the envelope's ``payload`` (``{"run": ..., "seq": ...}``) of each
    recorded request; duplicates (at-least-once) keep the first arrival.
    """
    seen: dict[int, float] = {}
    for request in requests:
        try:
            payload = json.loads(request.body.decode("utf-8"))["payload"]
        except (ValueError, KeyError, TypeError):
            continue
        if payload.get("run") != run:
            continue
        seq = int(payload["seq"])
        seen[seq] = min(seen.get(seq, request.received_at), request.received_at)
    return seen


# -- cross-checks: did the benchmark measure what it says? ----------------------


def delivery_log(tenant: str) -> list[Any]:
    """Every delivery of ``tenant`` as the delivery log lists it (all pages, newest first)."""
    from oms_webhooks.delivery.log import MAX_PAGE_SIZE, list_deliveries

    items: list[Any] = []
    cursor: str | None = None
    while True:
        page = list_deliveries(tenant, limit=MAX_PAGE_SIZE, cursor=cursor)
        items.extend(page.items)
        cursor = page.next_cursor
        if cursor is None:
            return items


def attempts_in_log(uid: str) -> int:
    """Attempts recorded for delivery ``uid`` (the delivery log's attempt items)."""
    from oms_webhooks.delivery.log import attempts_of

    return len(attempts_of(uid))


def webhook_ids(requests: Sequence[Arrival]) -> Counter[str]:
    """Requests per ``webhook-id`` header (one id per delivery, DESIGN §5)."""
    return Counter(r.headers.get("webhook-id", "") for r in requests)


def agree(**counts: Any) -> dict[str, Any]:
    """One cross-check: the same quantity counted from independent sources.

    ``counts`` maps a source to its count (or set); the result lists them
    with ``agree`` = all equal. Sets are shown by size, with what differs.
    """
    values = list(counts.values())
    same = all(v == values[0] for v in values[1:])
    shown: dict[str, Any] = {
        k: len(v) if isinstance(v, set | frozenset) else v for k, v in counts.items()
    }
    if not same and all(isinstance(v, set | frozenset) for v in values):
        union: set[Any] = set().union(*values)
        shown["differing"] = sorted(str(x) for x in union - set.intersection(*map(set, values)))[
            :20
        ]
    return {**shown, "agree": same}


def exit_unless_agreed(benchmark: str, checks: Mapping[str, Mapping[str, Any]]) -> None:
    """After :func:`emit`: exit 1, naming the checks that failed, unless all agree."""
    failed = {name: check for name, check in checks.items() if not check.get("agree")}
    if failed:
        note(f"{benchmark}: counts disagree, the figures are not trustworthy: {failed}")
        sys.exit(1)
