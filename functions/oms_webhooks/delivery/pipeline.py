"""The delivery pipeline: one delivery message → at most one attempt → its recorded outcome.

Plain module (:mod:`oms_webhooks.delivery.batch` hands it each SQS record;
the local stack's pollers feed the same handler). A pipeline with explicit
results, after svix's worker (``prepare → claim → attempt → record``), each
step returning a typed result (:mod:`oms_webhooks.delivery.outcome`):

1. :func:`prepare` loads the delivery and decides whether an attempt is due:
   a delivery already ``delivered``/``failed``/``cancelled`` is skipped (SQS
   may deliver a message twice, the router may send one twice: DESIGN §4);
   one whose countdown has not run out is ``not_due`` (a countdown over
   SQS's 12-hour visibility cap comes back early: a hop, DESIGN §5); a
   deleted or inactive subscription cancels it.
2. :func:`oms_webhooks.delivery.claim.claim` reserves the attempt with a
   conditional update and a lease, so two copies of one message never make
   two attempts for one countdown.
3. :func:`oms_webhooks.delivery.attempt.attempt` builds the envelope, signs it
   and POSTs it (:mod:`oms_webhooks.delivery.request.sender`: timeouts, no
   redirects, send-time URL guard).
4. :func:`record` stores the attempt on the delivery item (moving the
   previous one, if any, to its own attempt item) and moves the delivery:
   2xx → ``delivered``; 410 → ``failed`` and the subscription inactive;
   another failure with retries left → ``pending`` with the next countdown
   (:mod:`oms_webhooks.delivery.retry.delay`, ``Retry-After`` honoured within limits);
   retries exhausted → ``failed``.

The attempt count comes from the delivery record, never from SQS's
``ApproximateReceiveCount`` (DESIGN §5).
"""

from __future__ import annotations

import time
from contextlib import nullcontext
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from oms_webhooks.delivery import log as delivery_log
from oms_webhooks.delivery import message as delivery_message
from oms_webhooks.delivery import operational_events
from oms_webhooks.delivery import store as deliveries
from oms_webhooks.delivery.attempt import watched_attempt
from oms_webhooks.delivery.claim import DUE_SLACK_SECONDS, after_lost_claim, claim, lease_seconds
from oms_webhooks.delivery.host_limiter import HOST_BUSY_DELAY_SECONDS, HostLimiter
from oms_webhooks.delivery.outcome import Lane, Outcome, OutcomeKind, Prepared
from oms_webhooks.delivery.request.sender import AttemptResult, SendOptions
from oms_webhooks.delivery.retry import breaker
from oms_webhooks.delivery.retry.delay import next_delay
from oms_webhooks.routing import events_store
from oms_webhooks.settings import get_settings
from oms_webhooks.storage.models import DeliveryModel, EventPayloadModel, SubscriptionModel
from oms_webhooks.subscriptions import health
from oms_webhooks.subscriptions import store as subscription_store

#: Prepare-and-claim rounds of one message before it is simply held a second.
_CLAIM_ROUNDS = 3


def dispatch(
    uid: str,
    options: SendOptions,
    limiter: HostLimiter | None = None,
    *,
    detail: str | None = None,
    lane: Lane = "main",
    known: delivery_message.Known | None = None,
) -> Outcome:
    """Handle one delivery message end to end (prepare, gate, claim, attempt, record).

    ``detail``: the event's Detail if the message carried it (no payload read);
    ``known``: the delivery's unchanging fields if it carried them (the
    claim reads the delivery, :func:`prepare`).

    The gate (DESIGN §9): a delivery whose target's circuit breaker is open
    is ``held`` (no attempt, no retry used, still pending; ``failed`` once
    held past its creation + retention − 1 day); on the ``main`` lane a
    delivery whose target is marked slow is a ``divert`` (the caller moves
    its message to the slow lane). With a ``limiter``, a delivery whose host
    already has its share of attempts in flight is ``not_due`` for a second.
    A lost claim is settled by :func:`oms_webhooks.delivery.claim.after_lost_claim`.
    """
    for _ in range(_CLAIM_ROUNDS):
        prepared = prepare(uid, detail=detail, known=known)
        if isinstance(prepared, Outcome):
            return prepared
        keys = breaker.keys_for(prepared.subscription.target_url, prepared.delivery.tenant)
        verdict = breaker.check(keys, probe_lease=lease_seconds(options))
        if verdict.kind == "hold":
            return _held(prepared, verdict)
        if lane == "main" and verdict.kind == "go" and breaker.is_slow(keys):
            return Outcome("divert", uid, detail="target marked slow: moved to the slow lane")
        slot = limiter.acquire(prepared.subscription.target_url) if limiter else nullcontext(True)
        with slot as granted:
            if not granted:
                return Outcome("not_due", uid, delay=HOST_BUSY_DELAY_SECONDS, detail="host busy")
            if claim(prepared, lease_seconds=lease_seconds(options)):
                result = watched_attempt(prepared, options, keys)
                opened = breaker.report(keys, result, probe=verdict.kind == "probe")
                return replace(record(prepared, result), circuit_opened=opened)
        settled = after_lost_claim(uid)
        if settled is not None:
            return settled
    return Outcome("not_due", uid, delay=HOST_BUSY_DELAY_SECONDS, detail="claim contended")


def prepare(
    uid: str,
    *,
    now: float | None = None,
    detail: str | None = None,
    known: delivery_message.Known | None = None,
) -> Prepared | Outcome:
    """Load delivery ``uid`` and check that an attempt is due now (Unix seconds).

    ``detail``: the event's Detail as the delivery message carried it
    (:mod:`oms_webhooks.delivery.message`); without it the payload item is read.
    ``known``: the delivery's unchanging fields as the message carried them:
    the delivery is then not read here, and whether it is still pending and
    due is the claim's condition (:func:`oms_webhooks.delivery.claim.claim`).
    """
    now = time.time() if now is None else now
    if known is not None:
        delivery = deliveries.carried(uid, known)
    else:
        read = deliveries.get_store().get(uid)
        if read is None:
            return Outcome("skipped", uid, detail="no such delivery (expired or never created)")
        delivery = read
        if delivery.status in deliveries.FINAL_STATES:
            return Outcome("skipped", uid, detail=f"delivery already {delivery.status}")
        due = float(delivery.next_attempt_at or 0)
        if due - now > DUE_SLACK_SECONDS:
            return Outcome("not_due", uid, delay=due - now, detail="countdown not over")
    # Strongly consistent: an unsubscribe or deactivation is honoured at once.
    subscription = subscription_store.get_store().get(delivery.tenant, delivery.subscription_id)
    if subscription is None:
        return _cancel_loaded(delivery, "subscription deleted")
    if not subscription.is_active:
        return _cancel_loaded(delivery, "subscription inactive")
    if not deliveries.is_carried(delivery) and deliveries.opened_before(
        delivery, subscription.deactivated_at
    ):
        # DESIGN §10: re-activating never resumes what was pending before.
        return _cancel(delivery, "opened before the subscription was last deactivated")
    payload: EventPayloadModel | None
    if detail is not None:
        payload = EventPayloadModel(
            f"event#{delivery.event_id}",
            "payload",
            event_type=delivery.event_type,
            event_time=delivery.event_time,
            detail=detail,
        )
    else:
        payload = events_store.get_store().get_payload(delivery.event_id)
    if payload is None:
        return _finish_failed(delivery, "event payload expired")
    return Prepared(delivery, subscription, payload)


def _cancel(delivery: DeliveryModel, reason: str) -> Outcome:
    deliveries.get_store().cancel(delivery)  # changed meanwhile: cancelled or ended already
    return Outcome("cancelled", delivery.pk, detail=reason)


def _cancel_loaded(delivery: DeliveryModel, reason: str) -> Outcome:
    """:func:`_cancel`, reading a carried delivery first (skipped if gone or final)."""
    stored = deliveries.loaded(delivery)
    if stored is None or stored.status in deliveries.FINAL_STATES:
        return Outcome("skipped", delivery.pk, detail="delivery finished or gone")
    return _cancel(stored, reason)


def _finish_failed(delivery: DeliveryModel, reason: str) -> Outcome:
    deliveries.get_store().finish(delivery, deliveries.FAILED)
    notice = _ended(
        delivery,
        delivered=False,
        attempts=int(delivery.attempt_count or 0),
        response_http_status=_int_or_none(delivery.response_http_status),
        error=reason,
    )
    return Outcome("failed", delivery.pk, detail=reason, notices=(notice,))


def _int_or_none(value: Any) -> int | None:
    return None if value is None else int(value)


def record(
    prepared: Prepared, result: AttemptResult, *, now: float | None = None, manual: bool = False
) -> Outcome:
    """Store the attempt and move the delivery to its next state.

    A ``manual`` attempt that fails leaves the delivery's state and schedule
    as they were (a pending delivery keeps retrying on its countdown).
    """
    now = time.time() if now is None else now
    delivery, subscription = prepared.delivery, prepared.subscription
    number = int(delivery.attempt_count)
    expires = deliveries.expires_at()  # kept a retention after its last attempt
    _move_previous_attempt(delivery, expires)
    counted = number - int(delivery.manual_count or 0) - int(delivery.attempts_before_reopen or 0)
    retries_used = max(0, counted - 1)
    status: str | None = None
    next_attempt_at: int | None = None
    if result.delivered:
        outcome = Outcome("delivered", delivery.pk, result=result)
        status = deliveries.DELIVERED
    elif result.is_gone:
        outcome = Outcome(
            "failed", delivery.pk, detail="410 Gone: subscription deactivated", result=result
        )
        status = deliveries.FAILED
    elif manual:
        kind: OutcomeKind = "retry" if delivery.status == deliveries.PENDING else "failed"
        outcome = Outcome(kind, delivery.pk, detail="manual attempt failed", result=result)
    elif retries_used >= int(subscription.max_retries):
        outcome = Outcome("failed", delivery.pk, detail="retries exhausted", result=result)
        status = deliveries.FAILED
    else:
        delay = next_delay(subscription, retries_used, result, now=now)
        outcome = Outcome("retry", delivery.pk, delay=delay, result=result)
        next_attempt_at = int(now + delay)
    recorded = deliveries.Recorded(number, retries_used, expires, status, next_attempt_at)
    deliveries.get_store().record(delivery, result, recorded)
    if delivery.status in (deliveries.DELIVERED, deliveries.FAILED):
        error = result.error or (
            f"HTTP {result.status_code}" if result.status_code is not None else None
        )
        notice = _ended(
            delivery,
            delivered=result.delivered,
            attempts=number,
            response_http_status=result.status_code,
            error=error,
        )
        outcome = replace(outcome, notices=(notice,))
    return _with_health(outcome, subscription, result, manual=manual)


def _move_previous_attempt(delivery: DeliveryModel, expires: datetime) -> None:
    """Write the attempt the delivery item holds to its own attempt item (before it is replaced).

    The first attempt of a delivery writes no attempt item (one write unit
    fewer per delivery); each later one moves its predecessor out first, so
    every attempt stays in the delivery log (``delivery_log.attempts_of``).
    Idempotent: a record that stops after this write moves the same attempt
    again next time.
    """
    previous = delivery_log.on_delivery(delivery)
    if previous is None:
        return
    previous.expires_at = expires
    deliveries.get_store().move_attempt(previous)


def _ended(
    delivery: DeliveryModel,
    *,
    delivered: bool,
    attempts: int,
    response_http_status: int | None,
    error: str | None,
) -> operational_events.OperationalEvent:
    """``webhook.delivery.succeeded``/``failed`` for a delivery that just ended."""
    return operational_events.delivery_ended(
        delivered=delivered,
        delivery=delivery.pk,
        subscription_id=delivery.subscription_id,
        tenant=delivery.tenant,
        event_type=delivery.event_type,
        event_id=delivery.event_id,
        attempts=attempts,
        response_http_status=response_http_status,
        error=error,
    )


def _with_health(
    outcome: Outcome, subscription: SubscriptionModel, result: AttemptResult, *, manual: bool
) -> Outcome:
    """Update the subscription's health after an attempt (DESIGN §10); may disable it."""
    if result.delivered:
        health.note_success(subscription)
        return outcome
    if result.is_gone:
        disabled = health.disable(subscription, health.GONE_REASON)
    else:
        disabled = health.note_failure(subscription, may_disable=not manual)
    return _with_disabled(outcome, subscription, disabled)


def _with_disabled(
    outcome: Outcome, subscription: SubscriptionModel, disabled: health.Disabled | None
) -> Outcome:
    """Add ``webhook.subscription.disabled`` to the outcome when it disabled the subscription."""
    if disabled is None:
        return outcome
    notice = operational_events.subscription_disabled(
        subscription_id=subscription.id,
        tenant=subscription.tenant,
        event_type=subscription.event_type,
        target_url=subscription.target_url,
        reason=disabled.reason,
        failing_since=disabled.failing_since,
        disabled_at=disabled.disabled_at,
    )
    return replace(outcome, disabled=disabled, notices=(*outcome.notices, notice))


def _held(prepared: Prepared, verdict: breaker.Verdict, *, now: float | None = None) -> Outcome:
    """A delivery behind an open circuit: hold it, or end it once held past its retention."""
    now = time.time() if now is None else now
    stored = deliveries.loaded(prepared.delivery)
    if stored is None or stored.status in deliveries.FINAL_STATES:
        return Outcome("skipped", prepared.delivery.pk, detail="delivery finished or gone")
    delivery = stored
    give_up = (
        delivery.created_date.timestamp()
        + get_settings().delivery_retention_seconds
        - HELD_GIVE_UP_MARGIN_SECONDS
    )
    if now >= give_up:
        since = datetime.fromtimestamp(verdict.since or now, UTC).isoformat()
        return _finish_failed(delivery, f"circuit open since {since}")
    delay = min(verdict.delay, max(breaker.MIN_HOLD_SECONDS, give_up - now))
    held = Outcome("held", delivery.pk, delay=delay, detail="circuit open")
    # DESIGN §10: a held delivery counts as failing (no attempt is recorded).
    return _with_disabled(held, prepared.subscription, health.note_held(prepared.subscription))


#: A delivery held by an open circuit ends ``failed`` this long before its retention ends.
HELD_GIVE_UP_MARGIN_SECONDS = 86_400
