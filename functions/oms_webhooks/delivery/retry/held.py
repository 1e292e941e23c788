"""Why a pending delivery is held, as the delivery API shows it (DESIGN §9).

A delivery whose target's circuit breaker is open is *held*: the dispatcher
makes no attempt and keeps its message hidden until the breaker's ``until``
(:mod:`oms_webhooks.delivery.retry.breaker`). Nothing is written to the delivery on a hold
(holds stay cheap); its reason is read when an operator looks: a pending
delivery whose subscription's target has an open or half-open key is held,
and says so in its ``reason``:

* ``circuit open since <ISO time>; next probe at <ISO time>``;
* ``circuit half-open since <ISO time>: a probe is being made``.

Plain module (no Lambda). Cost: for the pending deliveries of a page only,
one BatchGetItem of their subscriptions and one of their breaker keys
(through the breaker's short cache).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from oms_webhooks.delivery.retry import breaker
from oms_webhooks.delivery.store import PENDING
from oms_webhooks.storage.models import DeliveryModel
from oms_webhooks.storage.target_state import State
from oms_webhooks.subscriptions.store import get_store

__all__ = ["reason", "reasons"]


def _iso(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).isoformat()


def reason(states: Sequence[State], *, now: float) -> str | None:
    """The hold reason given a delivery's breaker key states, or None (not held).

    An open key (open wins over half-open) says ``circuit open since …; next
    probe at …``; a half-open one ``circuit half-open since …: a probe is
    being made``. ``since`` is the outage's first opening (``opened_at``).
    """
    for name in ("open", "half_open"):
        for state in states:
            if state.state != name:
                continue
            since = _iso(state.opened_at if state.opened_at is not None else now)
            if name == "half_open":
                return f"circuit half-open since {since}: a probe is being made"
            probe = _iso(max(now, state.until or now))
            return f"circuit open since {since}; next probe at {probe}"
    return None


def reasons(
    tenant: str, items: Sequence[DeliveryModel], *, now: float | None = None
) -> dict[str, str]:
    """``{delivery uuid: reason}`` for the pending deliveries of ``items`` that are held.

    ``items`` are ``tenant``'s deliveries (the caller checked the scope).
    Deliveries whose subscription is gone are not held (the dispatcher
    cancels them).
    """
    now = datetime.now(UTC).timestamp() if now is None else now
    pending = [item for item in items if item.status == PENDING]
    if not pending:
        return {}
    wanted = sorted({item.subscription_id for item in pending})
    targets = {
        subscription.id: subscription.target_url
        for subscription in get_store().get_many(tenant, wanted)
    }
    keys = {sid: breaker.keys_for(url, tenant) for sid, url in targets.items()}
    states = breaker.states([key for pair in keys.values() for key in pair.both()])
    found: dict[str, str] = {}
    for item in pending:
        pair = keys.get(item.subscription_id)
        if pair is None:
            continue
        text = reason([states[key] for key in pair.both()], now=now)
        if text is not None:
            found[item.pk] = text
    return found
