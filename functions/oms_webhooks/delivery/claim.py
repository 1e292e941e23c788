"""The claim of an attempt: a lease on the delivery, and what to do after a lost claim.

Every attempt, automatic or an operator's resend, first reserves the delivery
with one conditional update (DESIGN §9), so two copies of one message, or a
resend and an automatic attempt, never POST at once.
"""

from __future__ import annotations

import random
import time

from oms_webhooks.delivery import store as deliveries
from oms_webhooks.delivery.message import MalformedMessage
from oms_webhooks.delivery.outcome import Outcome, Prepared
from oms_webhooks.delivery.request.sender import SendOptions

#: A message this many seconds early for its countdown is still attempted (clock slack).
DUE_SLACK_SECONDS = 1.0


def claim(prepared: Prepared, *, manual: bool = False, lease_seconds: float = 0.0) -> bool:
    """Reserve the next attempt (versioned update and a lease); False if another attempt holds it.

    Every attempt, automatic or manual (an operator's resend), takes the same
    lease: ``lease_until`` moves ``lease_seconds`` ahead (the attempt's
    worst-case duration) on the condition that no other lease is live, so a
    resend and an automatic attempt of one delivery never POST at once
    (DESIGN §9). An automatic attempt also moves ``next_attempt_at`` to the
    lease's end, so another copy of the message that loads the delivery
    while this attempt is in flight finds it not due instead of due;
    :func:`oms_webhooks.delivery.pipeline.record` then sets the real next
    time and drops the lease. If this process dies mid-attempt, the lease
    simply runs out. A ``manual`` attempt is counted apart, so it never uses
    up one of the subscription's automatic retries, and leaves the countdown
    as it was.
    """
    now = time.time()
    ends = int(now + lease_seconds) + 1
    if not manual:
        return _claim_due(prepared, now=now, ends=ends)
    return deliveries.get_store().claim_manual(prepared.delivery, lease_until=ends, now=int(now))


def _claim_due(prepared: Prepared, *, now: float, ends: int) -> bool:
    """An automatic attempt's claim: one conditional update that also reads the delivery.

    The condition is what :func:`oms_webhooks.delivery.pipeline.prepare`
    checks on a delivery it read (still ``pending``, its countdown over, no
    live lease), so a delivery that was only carried by its message
    (:func:`oms_webhooks.delivery.store.carried`) is claimed without a read
    first: the update returns the whole item, which the
    attempt and its record use (README "Design notes": one call fewer per
    attempt; :meth:`~oms_webhooks.delivery.store.DeliveryStore.claim_due`).
    No version condition: the attempt count is an atomic ``ADD``.
    A delivery opened before its subscription's last deactivation is
    cancelled here (DESIGN §10) and the claim lost.
    """
    delivery = prepared.delivery
    was_carried = deliveries.is_carried(delivery)
    store = deliveries.get_store()
    due_by = int(now + DUE_SLACK_SECONDS)
    if not store.claim_due(delivery, lease_until=ends, now=int(now), due_by=due_by):
        return False
    subscription = prepared.subscription
    if (delivery.tenant, delivery.subscription_id) != (subscription.tenant, subscription.id):
        raise MalformedMessage("the message's delivery does not match its subscription")
    if was_carried and deliveries.opened_before(delivery, subscription.deactivated_at):
        # DESIGN §10: re-activating never resumes what was pending before.
        store.finish(delivery, deliveries.CANCELLED, drop_lease=True)
        return False
    return True


def lease_seconds(options: SendOptions) -> float:
    """An attempt's lease: its worst case (DNS, connect and read timeouts) and a 10 s margin."""
    return options.dns_timeout + options.connect_timeout + options.read_timeout + 10.0


#: Up to this many seconds of jitter are added to a hold behind another attempt's lease.
LEASE_JITTER_SECONDS = 1.0
#: An automatic attempt behind a resend looks again after at most this many seconds.
MANUAL_HOLD_SECONDS = 2.0


def after_lost_claim(uid: str, *, now: float | None = None) -> Outcome | None:
    """What an automatic attempt does when its claim lost; None: prepare and claim again.

    - the delivery is gone or final → ``skipped``;
    - an operator's resend holds the lease → ``not_due`` until it ends, at
      most :data:`MANUAL_HOLD_SECONDS` (plus jitter): this message keeps the
      delivery's schedule, as the resend leaves it;
    - the delivery is due and free (a resend ended meanwhile) → None;
    - otherwise another copy of the message holds or has scheduled the
      attempt → ``skipped`` (that copy's message carries the schedule).
    """
    now = time.time() if now is None else now
    delivery = deliveries.get_store().get(uid)
    if delivery is None or delivery.status in deliveries.FINAL_STATES:
        return Outcome("skipped", uid, detail="delivery finished meanwhile")
    lease = float(delivery.lease_until or 0)
    if lease > now and delivery.lease_manual:
        # The lease is the resend's worst case; it usually ends much sooner.
        wait = min(lease - now, MANUAL_HOLD_SECONDS)
        delay = wait + random.uniform(0.0, LEASE_JITTER_SECONDS)  # noqa: S311 - jitter
        return Outcome("not_due", uid, delay=delay, detail="a manual resend is in progress")
    due = float(delivery.next_attempt_at or 0)
    if lease <= now and due - now <= DUE_SLACK_SECONDS:
        return None
    if lease <= now:
        # Early for its countdown (a hop past SQS's 12-hour cap, DESIGN §5),
        # as prepare() finds when it reads the delivery before the claim.
        return Outcome("not_due", uid, delay=due - now, detail="countdown not over")
    return Outcome("skipped", uid, detail="another copy of the message holds this attempt")
