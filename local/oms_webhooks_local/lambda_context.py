"""Lambda invocations on the local stack: a context object, and log lines that name their function.

Every handler the local stack runs (the gateway's authorizer and api
handlers, the pollers' router, dispatcher and recoverer) gets a
:class:`FakeLambdaContext` and runs inside :func:`invocation`, so that its
log lines name its own function even though all functions share one process
here (on Lambda, each has its own): see :class:`InvocationLogFilter`.
"""

from __future__ import annotations

import contextlib
import logging
import time
import uuid
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools.logging.formatter import BasePowertoolsFormatter
from aws_lambda_powertools.utilities.typing import LambdaContext

from oms_webhooks import aws_call_log, names

#: A Lambda entry point: ``handler(event, context) -> result``.
Handler = Callable[[dict[str, Any], LambdaContext], Any]

#: Moto's default account, which the local stack always uses (DESIGN §6).
ACCOUNT_ID = names.LOCAL_ACCOUNT_ID
REGION = names.LOCAL_REGION


class FakeLambdaContext(LambdaContext):
    """The Lambda context object handed to a handler: names, memory and a deadline.

    Args:
        function_name: the function's name (also in its ARN).
        timeout_seconds: the invocation's time budget; ``get_remaining_time_in_millis``
            counts down from it.
        memory_limit_in_mb: the configured memory.
    """

    def __init__(
        self, function_name: str, *, timeout_seconds: float = 30.0, memory_limit_in_mb: int = 256
    ) -> None:
        self._function_name = function_name
        self._function_version = "$LATEST"
        self._invoked_function_arn = (
            f"arn:aws:lambda:{REGION}:{ACCOUNT_ID}:function:{function_name}"
        )
        self._memory_limit_in_mb = memory_limit_in_mb
        self._aws_request_id = str(uuid.uuid4())
        self._log_group_name = f"/aws/lambda/{function_name}"
        self._log_stream_name = f"{datetime.now(UTC):%Y/%m/%d}/[$LATEST]{uuid.uuid4().hex}"
        self._deadline = time.monotonic() + timeout_seconds

    def get_remaining_time_in_millis(self) -> int:  # type: ignore[override]
        """Milliseconds left before the invocation's deadline (≥ 0)."""
        return max(0, int((self._deadline - time.monotonic()) * 1000))


#: The Lambda context of the invocation running in this thread (see :func:`invocation`).
_CURRENT_CONTEXT: ContextVar[LambdaContext | None] = ContextVar(
    "oms_webhooks_local_lambda_context", default=None
)


class InvocationLogFilter(logging.Filter):
    """Tags each log record with the context of the invocation running in its thread.

    Powertools' ``inject_lambda_context`` stores ``function_name``,
    ``function_arn``, ``function_memory_size`` and ``function_request_id`` in
    the formatter, which every ``Logger`` of one service shares. On Lambda each
    function has its own process, so that is right there; on the local stack
    the router, dispatcher, authorizer and api handlers run at once in threads
    of one process, and each invocation would overwrite the others' keys
    (router lines tagged ``oms-webhooks-dispatcher``). Set as record
    attributes, these keys win over the formatter's (Powertools adds a
    record's extra attributes last), per thread.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        """Add the current invocation's keys to ``record`` (if one runs here); keep it."""
        context = _CURRENT_CONTEXT.get()
        if context is not None:
            record.function_name = context.function_name
            record.function_arn = context.invoked_function_arn
            record.function_memory_size = context.memory_limit_in_mb
            record.function_request_id = context.aws_request_id
        return True


#: The one filter :func:`install_invocation_log_filter` adds to Powertools' handlers.
INVOCATION_LOG_FILTER = InvocationLogFilter()


def install_invocation_log_filter() -> None:
    """Add :data:`INVOCATION_LOG_FILTER` to every Powertools log handler (idempotent)."""
    loggers = [logging.getLogger()]
    loggers += [
        candidate
        for candidate in list(logging.Logger.manager.loggerDict.values())
        if isinstance(candidate, logging.Logger)
    ]
    for candidate in loggers:
        for log_handler in list(candidate.handlers):
            if isinstance(log_handler.formatter, BasePowertoolsFormatter) and (
                INVOCATION_LOG_FILTER not in log_handler.filters
            ):
                log_handler.addFilter(INVOCATION_LOG_FILTER)


@contextlib.contextmanager
def invocation(context: LambdaContext) -> Iterator[LambdaContext]:
    """Run one Lambda invocation with ``context`` in this thread: its log lines name it.

    Installs :class:`InvocationLogFilter` on the Powertools log handlers first
    (at every invocation, so that handlers created since the last are covered),
    and attributes the AWS calls of the block to the function (benchmarks:
    :mod:`oms_webhooks.aws_call_log`).
    """
    install_invocation_log_filter()
    token = _CURRENT_CONTEXT.set(context)
    try:
        with aws_call_log.function_scope(context.function_name):
            yield context
    finally:
        _CURRENT_CONTEXT.reset(token)


__all__ = [
    "ACCOUNT_ID",
    "INVOCATION_LOG_FILTER",
    "REGION",
    "FakeLambdaContext",
    "Handler",
    "InvocationLogFilter",
    "install_invocation_log_filter",
    "invocation",
]
