"""A subscription's health: ``failing_since``, auto-disable and its reason (DESIGN §10).

Health lives apart from the subscription, in a small item of the
subscriptions table kept by :mod:`oms_webhooks.subscriptions.health_store`
(hash ``<tenant>#health``), written with ``if_not_exists``-style updates: the
dispatcher never makes a versioned full put of the subscription, so it never
races a partner's PUT/PATCH.

* ``failing_since``: None, or the time of the first failed attempt after the
  last success (or creation). A failed attempt sets it if absent
  (:func:`note_failure`: one ``UpdateItem`` that returns the stored value); a
  delivery held by an open circuit breaker counts as a failure too, without
  an attempt. A 2xx clears it (:func:`note_success`: a read, and a write only
  when it was set; a process remembers a clear subscription for
  :data:`CLEAR_CACHE_SECONDS`, so a busy healthy subscription costs no
  health I/O at all most of the time).
* Auto-disable (:func:`disable`): when ``now − failing_since ≥``
  ``auto_disable_after_seconds`` (default 432,000 s = 5 days, as Svix), or at
  once on a 410 Gone, the subscription turns inactive (a conditional update
  of ``is_active``, the sparse fan-out key and ``deactivated_at``: the
  dispatcher then cancels every delivery opened before that time) and the
  health item keeps ``disabled_reason`` (``"failing since <ISO time>"`` or
  ``"410 Gone"``) and ``disabled_at``.
* Re-activating the subscription (PATCH/PUT ``is_active: true``) deletes the
  health item (in the same transaction), which clears
  ``failing_since`` and the reason.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime

from oms_webhooks.settings import get_settings
from oms_webhooks.storage.models import SubscriptionModel
from oms_webhooks.subscriptions import health_store, store

#: The reason of a subscription disabled by a 410 Gone answer (DESIGN §4, §10).
GONE_REASON = "410 Gone"
#: Seconds a process trusts that a subscription's health is clear (no failing_since).
CLEAR_CACHE_SECONDS = 5.0
#: Tries of the conditional subscription update when a partner's change races it.
_DISABLE_TRIES = 3


@dataclass(frozen=True)
class Disabled:
    """A subscription this process just turned inactive (for the operational event).

    Attributes:
        subscription: the subscription as it was before (still carrying its fields).
        reason: ``"failing since <ISO time>"`` or :data:`GONE_REASON`.
        failing_since: when its unbroken failure began, if known.
        disabled_at: when it was turned inactive.
    """

    subscription: SubscriptionModel
    reason: str
    failing_since: datetime | None
    disabled_at: datetime


_clear_lock = threading.Lock()
_known_clear: dict[tuple[str, str], float] = {}


def _forget_clear(key: tuple[str, str]) -> None:
    with _clear_lock:
        _known_clear.pop(key, None)


def note_success(subscription: SubscriptionModel) -> None:
    """A 2xx from the subscription's target: clear ``failing_since`` if it is set."""
    key = (subscription.tenant, subscription.id)
    now = time.monotonic()
    with _clear_lock:
        if _known_clear.get(key, 0.0) > now:
            return
    item = health_store.get_store().get(*key)
    if item is not None and item.failing_since is not None:
        health_store.get_store().clear_failing(item)
    with _clear_lock:
        _known_clear[key] = now + CLEAR_CACHE_SECONDS


def note_failure(
    subscription: SubscriptionModel, *, now: datetime | None = None, may_disable: bool = True
) -> Disabled | None:
    """A failed attempt (or a delivery held by an open breaker): mark the subscription failing.

    Sets ``failing_since`` to ``now`` unless it is already set (one
    ``UpdateItem`` returning the stored value), then, with ``may_disable``,
    turns the subscription inactive when it has been failing for
    ``auto_disable_after_seconds`` or more.

    Returns:
        :class:`Disabled` when this call disabled the subscription, else None.
    """
    now = now or datetime.now(UTC)
    _forget_clear((subscription.tenant, subscription.id))
    stored = health_store.get_store().mark_failing(subscription.tenant, subscription.id, now)
    since = stored or now
    threshold = get_settings().auto_disable_after_seconds
    if not may_disable or not subscription.is_active:
        return None
    if (now - since).total_seconds() < threshold:
        return None
    return disable(subscription, f"failing since {iso(since)}", failing_since=since, now=now)


#: A process notes a held delivery's subscription as failing at most this often, in seconds.
HELD_NOTE_SECONDS = 60.0
_held_noted: dict[tuple[str, str], float] = {}


def note_held(subscription: SubscriptionModel, *, now: datetime | None = None) -> Disabled | None:
    """A delivery held by an open circuit breaker: it counts as failing (DESIGN §10).

    No attempt is recorded. Held deliveries come back every few seconds, so a
    process writes this at most every :data:`HELD_NOTE_SECONDS` per
    subscription (or a quarter of the auto-disable threshold, if shorter):
    ``failing_since`` only needs setting once.

    Returns:
        :class:`Disabled` when this call disabled the subscription, else None.
    """
    key = (subscription.tenant, subscription.id)
    tick = time.monotonic()
    every = min(HELD_NOTE_SECONDS, get_settings().auto_disable_after_seconds / 4)
    with _clear_lock:
        if _held_noted.get(key, 0.0) > tick:
            return None
        _held_noted[key] = tick + every
    return note_failure(subscription, now=now)


def iso(moment: datetime) -> str:
    """``moment`` in UTC as ISO 8601 with a ``Z`` (seconds precision)."""
    return moment.astimezone(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def disable(
    subscription: SubscriptionModel,
    reason: str,
    *,
    failing_since: datetime | None = None,
    now: datetime | None = None,
) -> Disabled | None:
    """Turn an active subscription inactive, stamping ``deactivated_at`` and the reason.

    The subscription's update and the health item's reason go in one
    ``TransactWriteItems``. The subscription update is versioned (PynamoDB
    adds the condition): when a partner's change races it, the subscription is
    read again and the update retried, unless it is no longer active (then
    nothing is done: the other change, or another dispatcher's disable, won).

    Returns:
        :class:`Disabled` when this call turned it inactive; None when it
        already was (or was deleted meanwhile).
    """
    now = now or datetime.now(UTC)
    current: SubscriptionModel | None = subscription
    for _ in range(_DISABLE_TRIES):
        if current is None or not current.is_active:
            return None
        if health_store.get_store().disable(current, reason, now):
            return Disabled(current, reason, failing_since, now)
        current = store.get_store().get(subscription.tenant, subscription.id)
    return None
