"""A log of every AWS API call of this process, for the benchmarks; off unless asked.

Nothing happens unless ``$OMS_WEBHOOKS_COUNT_AWS_CALLS`` is set when the
package is imported (``oms_webhooks/__init__.py`` then calls
:func:`install_from_env`); a deployment never sets it. When it names a
directory, this process appends to ``<dir>/aws-calls-<pid>.jsonl``; otherwise
to the file it names. Each process of a local stack that imports the package
(benchmark, pollers, API) writes its own lines, so a benchmark reads one
place whatever runs the handlers.

Installed, it wraps ``botocore.client.BaseClient._make_api_call``, the one
method every botocore client goes through (boto3's and PynamoDB's alike),
and writes one JSON line per call::

    {"kind": "call", "pid", "thread", "function", "service", "operation",
     "start", "end" (time.time() seconds), "attempts": [{"id", "attempt"}],
     "error" (error code or null), "params", "response"}

``attempts`` holds each HTTP request's ``amz-sdk-invocation-id`` and
``amz-sdk-request`` headers (a ``before-send`` hook), so that the calls can
be matched one by one with what the server saw (moto's request recorder).
DynamoDB calls get ``ReturnConsumedCapacity=INDEXES``, so the response says
what DynamoDB charged (moto answers with fixed figures).

``function`` is the Lambda function the call was made for: set by
:func:`function_scope` at handler entry (the local stack's ``invocation``)
and carried into the threads the handler starts, through
``ThreadPoolExecutor.submit`` (so ``loop.run_in_executor`` too) and
``threading.Thread.start``. :func:`function_scope` also writes one
``{"kind": "invocation", "function", "start", "end", "pid"}`` line per
invocation (Lambda durations).
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import threading
import time
from collections.abc import Iterator
from contextvars import ContextVar
from datetime import date, datetime
from typing import Any

#: The environment variable that turns the log on: a directory or a file.
ENV = "OMS_WEBHOOKS_COUNT_AWS_CALLS"
#: The Lambda function the current code runs for (None outside handlers).
FUNCTION: ContextVar[str | None] = ContextVar("oms_webhooks_function", default=None)
#: DynamoDB operations that take ``ReturnConsumedCapacity``.
CAPACITY_OPERATIONS = frozenset(
    {
        "BatchGetItem",
        "BatchWriteItem",
        "DeleteItem",
        "GetItem",
        "PutItem",
        "Query",
        "Scan",
        "TransactGetItems",
        "TransactWriteItems",
        "UpdateItem",
    }
)

_ATTEMPTS: ContextVar[list[dict[str, str | None]] | None] = ContextVar(
    "oms_webhooks_attempts", default=None
)
_lock = threading.Lock()
_fd: int | None = None


def _default(value: Any) -> Any:
    if isinstance(value, bytes | bytearray):
        return base64.b64encode(bytes(value)).decode("ascii")
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, set | frozenset):
        return sorted(value, key=str)
    return repr(value)


def _write(record: dict[str, Any]) -> None:
    if _fd is None:
        return
    line = (json.dumps(record, default=_default, separators=(",", ":")) + "\n").encode("utf-8")
    with _lock:
        os.write(_fd, line)


@contextlib.contextmanager
def function_scope(name: str) -> Iterator[None]:
    """Attribute the AWS calls of the block (and of its threads) to function ``name``."""
    token = FUNCTION.set(name)
    started = time.time()
    try:
        yield
    finally:
        FUNCTION.reset(token)
        _write(
            {
                "kind": "invocation",
                "function": name,
                "start": started,
                "end": time.time(),
                "pid": os.getpid(),
            }
        )


def _header(headers: Any, name: str) -> str | None:
    value = headers.get(name)
    return value.decode("ascii", "replace") if isinstance(value, bytes) else value


def _before_send(request: Any, **_kwargs: Any) -> None:
    attempts = _ATTEMPTS.get()
    if attempts is not None:
        attempts.append(
            {
                "id": _header(request.headers, "amz-sdk-invocation-id"),
                "attempt": _header(request.headers, "amz-sdk-request"),
            }
        )


def _patch_botocore() -> None:
    from botocore.client import BaseClient
    from botocore.exceptions import ClientError

    original = BaseClient._make_api_call

    def _make_api_call(client: Any, operation_name: str, api_params: dict[str, Any]) -> Any:
        service = client.meta.service_model.service_name
        if service == "dynamodb" and operation_name in CAPACITY_OPERATIONS:
            api_params = {**api_params, "ReturnConsumedCapacity": "INDEXES"}
        client.meta.events.register("before-send", _before_send, unique_id="oms-count-send")
        attempts: list[dict[str, str | None]] = []
        token = _ATTEMPTS.set(attempts)
        started = time.time()
        response: Any = None
        error: str | None = None
        try:
            response = original(client, operation_name, api_params)
            return response
        except ClientError as exc:
            response = exc.response
            error = str(exc.response.get("Error", {}).get("Code"))
            raise
        except Exception as exc:
            error = type(exc).__name__
            raise
        finally:
            _ATTEMPTS.reset(token)
            kept = {k: v for k, v in (response or {}).items() if k != "ResponseMetadata"}
            _write(
                {
                    "kind": "call",
                    "pid": os.getpid(),
                    "thread": threading.current_thread().name,
                    "function": FUNCTION.get(),
                    "service": service,
                    "operation": operation_name,
                    "start": started,
                    "end": time.time(),
                    "attempts": attempts,
                    "error": error,
                    "params": api_params,
                    "response": kept,
                }
            )

    BaseClient._make_api_call = _make_api_call


def _patch_threads() -> None:
    """Carry :data:`FUNCTION` into pool workers and new threads (they start empty)."""
    from concurrent.futures import ThreadPoolExecutor

    original_submit = ThreadPoolExecutor.submit
    original_start = threading.Thread.start

    def submit(self: ThreadPoolExecutor, fn: Any, /, *args: Any, **kwargs: Any) -> Any:
        name = FUNCTION.get()
        if name is None:
            return original_submit(self, fn, *args, **kwargs)

        def run(*a: Any, **k: Any) -> Any:
            token = FUNCTION.set(name)
            try:
                return fn(*a, **k)
            finally:
                FUNCTION.reset(token)

        return original_submit(self, run, *args, **kwargs)

    def start(self: threading.Thread) -> None:
        name = FUNCTION.get()
        if name is not None:
            run = self.run

            def run_in_scope() -> None:
                FUNCTION.set(name)
                run()

            self.run = run_in_scope  # type: ignore[method-assign]
        original_start(self)

    ThreadPoolExecutor.submit = submit  # type: ignore[method-assign,assignment]
    threading.Thread.start = start  # type: ignore[method-assign]


def install(path: str) -> None:
    """Log this process's AWS calls to ``path`` (a directory or a file); once per process."""
    global _fd
    with _lock:
        if _fd is not None:
            return
        target = os.path.join(path, f"aws-calls-{os.getpid()}.jsonl")
        if not os.path.isdir(path):
            target = path
        _fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    _patch_botocore()
    _patch_threads()


def install_from_env() -> bool:
    """:func:`install` if ``$OMS_WEBHOOKS_COUNT_AWS_CALLS`` is set; whether it is."""
    path = os.environ.get(ENV, "").strip()
    if path:
        install(path)
    return bool(path)


def installed() -> bool:
    """Whether this process logs its AWS calls."""
    return _fd is not None


__all__ = ["ENV", "FUNCTION", "function_scope", "install", "install_from_env", "installed"]
