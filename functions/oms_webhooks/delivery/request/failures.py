"""What a failed connection or read of an attempt was, in words and as a kind.

:func:`describe` gives the attempt's ``error`` text (short and stable:
``"connection refused"``, ``"connect timeout after 5.0 s"``, ...);
:func:`failure_kind` says how the circuit breaker counts it (DESIGN §9);
:func:`connect_failed` whether nothing was sent, so the next address may be
tried. Each reads the whole chain of the exception (requests wraps urllib3,
which wraps the socket error): :func:`causes`.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Literal

import requests
import urllib3.exceptions

from oms_webhooks.delivery.request.transport import TooManyInterimResponses

__all__ = ["causes", "connect_failed", "describe", "failure_kind"]


def causes(exc: BaseException) -> Iterator[BaseException]:
    """``exc`` and what it wraps: ``__cause__``, ``__context__``, ``reason``, exception args."""
    seen: set[int] = set()
    stack = [exc]
    while stack:
        current = stack.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        linked = [current.__cause__, current.__context__, getattr(current, "reason", None)]
        linked += list(current.args)
        stack.extend(e for e in linked if isinstance(e, BaseException))


def describe(exc: BaseException, *, connect_timeout: float, read_timeout: float) -> str:
    """A short, stable error text for a failed connection or read (timeouts in seconds)."""
    chain = list(causes(exc))
    if any(isinstance(e, TooManyInterimResponses) for e in chain):
        return str(next(e for e in chain if isinstance(e, TooManyInterimResponses)))
    if isinstance(exc, requests.ConnectTimeout) or any(
        isinstance(e, urllib3.exceptions.ConnectTimeoutError)
        and not isinstance(e, urllib3.exceptions.NewConnectionError)
        for e in chain
    ):
        return f"connect timeout after {connect_timeout} s"
    if any(
        isinstance(e, requests.ReadTimeout | urllib3.exceptions.ReadTimeoutError | TimeoutError)
        for e in chain
    ):
        return f"read timeout after {read_timeout} s"
    if any(isinstance(e, ConnectionRefusedError) for e in chain):
        return "connection refused"
    if any(isinstance(e, ConnectionResetError) for e in chain):
        return "connection reset by peer"
    if isinstance(exc, requests.exceptions.SSLError):
        return f"TLS error: {_innermost(chain)}"
    if any(isinstance(e, urllib3.exceptions.NewConnectionError) for e in chain):
        return f"connection failed: {_innermost(chain)}"
    return f"connection error: {_innermost(chain)}"


def failure_kind(exc: BaseException) -> Literal["connection", "timeout"]:
    """A network error as the circuit breaker counts it (DESIGN §9)."""
    chain = list(causes(exc))
    timeouts = (
        requests.Timeout,
        urllib3.exceptions.TimeoutError,
        TimeoutError,
    )
    if any(isinstance(e, timeouts) for e in chain) and not any(
        isinstance(e, urllib3.exceptions.NewConnectionError) for e in chain
    ):
        return "timeout"
    if isinstance(exc, requests.ConnectTimeout):
        return "timeout"
    return "connection"


def _innermost(chain: list[BaseException]) -> str:
    leaf = chain[-1]
    return str(leaf) or type(leaf).__name__


def connect_failed(exc: BaseException) -> bool:
    """True when no connection was made (so nothing was sent): the next address may be tried."""
    return any(
        isinstance(e, urllib3.exceptions.NewConnectionError | ConnectionRefusedError)
        for e in causes(exc)
    ) and not isinstance(exc, requests.ConnectTimeout)
