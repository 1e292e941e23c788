"""At most a few pings and manual resends per tenant at once (DESIGN §9, operators' actions).

A ping or a manual resend makes one attempt inside the API function; to a
dead or dripping target it lasts up to connect + read timeout. Without a
bound, one tenant could keep many API execution environments busy that way.
So each tenant has ``OMS_WEBHOOKS_MAX_OPERATOR_SENDS_PER_TENANT`` (2) slots,
shared by every execution environment: small items in the deliveries table
(:mod:`oms_webhooks.storage.operator_slots`). :func:`operator_slot`
takes a free slot with one conditional write (free = its lease has ended,
so a crashed request frees its slot by itself after one attempt budget),
and frees it with one write when the attempt is done. When every slot is
taken it raises :class:`~oms_webhooks.errors.TooManyRequests` (429 with
``Retry-After``) without any attempt.

Plain module, no Lambda. Cost: 2 writes per ping or resend (and one failed
conditional write per taken slot tried).
"""

from __future__ import annotations

import contextlib
import math
import secrets
import time
from collections.abc import Iterator

from oms_webhooks.errors import TooManyRequests
from oms_webhooks.settings import get_settings
from oms_webhooks.storage.operator_slots import get_store

__all__ = ["attempt_budget_seconds", "operator_slot"]

_MICRO = 1_000_000


def attempt_budget_seconds() -> float:
    """Seconds one ping or resend may take at worst: DNS, connect and read timeouts + 1 s."""
    settings = get_settings()
    return (
        settings.dns_timeout_seconds
        + settings.connect_timeout_seconds
        + settings.read_timeout_seconds
        + 1.0
    )


@contextlib.contextmanager
def operator_slot(tenant: str, *, now: float | None = None) -> Iterator[None]:
    """Hold one of ``tenant``'s slots for a ping or a manual resend while the block runs.

    Raises:
        TooManyRequests: every slot is taken (``retry_after``: whole seconds,
            one attempt budget, after which a slot is free at the latest).
    """
    started = int((time.time() if now is None else now) * _MICRO)
    budget = attempt_budget_seconds()
    # A lease covers the attempt and the writes around it, in microseconds; its
    # low digits (random) make it this request's own, so only this request frees it.
    lease_until = started + (math.ceil(budget) + 5) * _MICRO + secrets.randbelow(_MICRO)
    slots = get_store()
    for index in range(get_settings().max_operator_sends_per_tenant):
        if slots.take(tenant, index, lease_until=lease_until, now=started):
            break
    else:
        raise TooManyRequests(
            "Too many pings or resends of this tenant in flight; retry later",
            retry_after=math.ceil(budget),
        )
    try:
        yield
    finally:
        slots.free(tenant, index, lease_until=lease_until)
