"""At most a few pings and manual resends per tenant at once (DESIGN §9, operators' actions).

A ping or a manual resend makes one attempt inside the API function; to a
dead or dripping target it lasts up to connect + read timeout. Without a
bound, one tenant could keep many API execution environments busy that way.
So each tenant has ``OMS_WEBHOOKS_MAX_OPERATOR_SENDS_PER_TENANT`` (2) slots,
shared by every execution environment: small items in the deliveries table
(:class:`~oms_webhooks.storage.models.OperatorSlotModel`). :func:`operator_slot`
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
from datetime import UTC, datetime

from pynamodb.exceptions import PutError, UpdateError

from oms_webhooks.errors import TooManyRequests
from oms_webhooks.settings import get_settings
from oms_webhooks.storage.models import OperatorSlotModel
from oms_webhooks.storage.specs import bind_tables

__all__ = ["attempt_budget_seconds", "operator_slot"]

#: Slot items expire (TTL) this long after their last write, in seconds.
ITEM_TTL_SECONDS = 86_400
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


def _take(tenant: str, index: int, lease_until: int, now: int) -> bool:
    """Take slot ``index`` of ``tenant`` until ``lease_until`` if it is free (one write).

    ``lease_until`` and ``now``: Unix time in microseconds.
    """
    item = OperatorSlotModel(f"opslot#{tenant}", f"slot#{index}")
    item.lease_until = lease_until
    item.expires_at = datetime.fromtimestamp(now / _MICRO + ITEM_TTL_SECONDS, UTC)
    try:
        item.save(
            condition=OperatorSlotModel.pk.does_not_exist() | (OperatorSlotModel.lease_until < now)
        )
    except PutError as exc:
        if exc.cause_response_code == "ConditionalCheckFailedException":
            return False
        raise
    return True


def _free(tenant: str, index: int, lease_until: int) -> None:
    """Free slot ``index`` if it is still this request's lease (a late one frees nothing)."""
    item = OperatorSlotModel(f"opslot#{tenant}", f"slot#{index}")
    with contextlib.suppress(UpdateError):
        item.update(
            actions=[OperatorSlotModel.lease_until.set(0)],
            condition=OperatorSlotModel.lease_until == lease_until,
        )


@contextlib.contextmanager
def operator_slot(tenant: str, *, now: float | None = None) -> Iterator[None]:
    """Hold one of ``tenant``'s slots for a ping or a manual resend while the block runs.

    Raises:
        TooManyRequests: every slot is taken (``retry_after``: whole seconds,
            one attempt budget, after which a slot is free at the latest).
    """
    bind_tables()
    started = int((time.time() if now is None else now) * _MICRO)
    budget = attempt_budget_seconds()
    # A lease covers the attempt and the writes around it, in microseconds; its
    # low digits (random) make it this request's own, so only this request frees it.
    lease_until = started + (math.ceil(budget) + 5) * _MICRO + secrets.randbelow(_MICRO)
    for index in range(get_settings().max_operator_sends_per_tenant):
        if _take(tenant, index, lease_until, started):
            break
    else:
        raise TooManyRequests(
            "Too many pings or resends of this tenant in flight; retry later",
            retry_after=math.ceil(budget),
        )
    try:
        yield
    finally:
        _free(tenant, index, lease_until)
