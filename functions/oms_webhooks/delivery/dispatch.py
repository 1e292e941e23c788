"""Dispatch: one delivery message → at most one attempt → its recorded outcome.

Plain module (the dispatcher handler parses SQS records; the local stack's
pollers feed the same handler). A pipeline with explicit results, after
svix's worker (``prepare → attempt → record``):

1. :func:`prepare` loads the delivery and decides whether an attempt is due:
   a delivery already ``delivered``/``failed``/``cancelled`` is skipped (SQS
   may deliver a message twice, the router may send one twice: DESIGN §4);
   one whose countdown has not run out is :data:`NOT_DUE` (a countdown over
   SQS's 12-hour visibility cap comes back early: a hop, DESIGN §5); a
   deleted or inactive subscription cancels it.
2. :func:`claim` reserves the attempt with a versioned conditional update,
   so two copies of one message never make two attempts for one countdown.
3. :func:`attempt` builds the envelope, signs it and POSTs it
   (:mod:`oms_webhooks.delivery.request.sender`: timeouts, no redirects, send-time URL guard).
4. :func:`record` stores the attempt on the delivery item (moving the
   previous one, if any, to its own attempt item) and moves the delivery:
   2xx → ``delivered``; 410 → ``failed`` and the subscription inactive;
   another failure with retries left → ``pending`` with the next countdown
   (:mod:`oms_webhooks.delivery.retry.policies`, ``Retry-After`` honoured within limits);
   retries exhausted → ``failed``.

The attempt count comes from the delivery record, never from SQS's
``ApproximateReceiveCount`` (DESIGN §5).
"""

from __future__ import annotations

import json
import random
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any, Literal
from urllib.parse import urlsplit

from pynamodb.exceptions import UpdateError

from oms_webhooks.delivery import log as delivery_log
from oms_webhooks.delivery import message as delivery_message
from oms_webhooks.delivery import operational_events
from oms_webhooks.delivery import store as deliveries
from oms_webhooks.delivery.message import MalformedMessage as MalformedMessage
from oms_webhooks.delivery.request.envelope import build_envelope
from oms_webhooks.delivery.request.redaction import redact_result, secret_strings
from oms_webhooks.delivery.request.sender import AttemptResult, SendOptions, send
from oms_webhooks.delivery.request.signing import signature_headers
from oms_webhooks.delivery.retry import breaker
from oms_webhooks.delivery.retry.policies import countdown_for
from oms_webhooks.delivery.retry.retry_after import parse_retry_after
from oms_webhooks.errors import Conflict, NotFound
from oms_webhooks.limits import SQS_MAX_VISIBILITY_SECONDS
from oms_webhooks.settings import get_settings
from oms_webhooks.storage.models import DeliveryModel, EventPayloadModel, SubscriptionModel
from oms_webhooks.subscriptions import health
from oms_webhooks.subscriptions.sealing import unseal

OutcomeKind = Literal[
    "delivered", "retry", "failed", "cancelled", "skipped", "not_due", "held", "divert"
]
#: The dispatcher's lanes (DESIGN §9): slow targets' deliveries move to the slow one.
Lane = Literal["main", "slow"]
#: A message this many seconds early for its countdown is still attempted (clock slack).
DUE_SLACK_SECONDS = 1.0
#: Retry-After values are never honoured beyond this, in seconds (one SQS hop).
MAX_RETRY_AFTER_SECONDS = SQS_MAX_VISIBILITY_SECONDS


@dataclass(frozen=True)
class Outcome:
    """What handling one delivery message decided.

    ``delay`` (seconds) is set for ``retry`` and ``not_due``: how long the
    message must stay hidden before the next look. ``disabled`` is set when
    this attempt turned the subscription inactive (410, or failing too long).
    ``notices`` are the operational events to put on the bus (DESIGN §10).
    """

    kind: OutcomeKind
    delivery_uuid: str
    delay: float | None = None
    detail: str = ""
    result: AttemptResult | None = None
    disabled: health.Disabled | None = None
    #: The attempt opened its target's circuit breaker (a metric counts opens).
    circuit_opened: bool = False
    notices: tuple[operational_events.OperationalEvent, ...] = ()


@dataclass(frozen=True)
class Prepared:
    """Everything an attempt needs, loaded and checked."""

    delivery: DeliveryModel
    subscription: SubscriptionModel
    payload: EventPayloadModel


def parse_message(body: str) -> str:
    """The delivery uuid of a delivery message body (:func:`delivery_message.decode`).

    Raises:
        MalformedMessage: not JSON, not an object, or no 32-hex ``delivery``.
    """
    return delivery_message.decode(body).delivery_uuid


def _cancel(delivery: DeliveryModel, reason: str) -> Outcome:
    try:
        delivery.update(
            actions=[
                DeliveryModel.status.set(deliveries.CANCELLED),
                DeliveryModel.modified_date.set(datetime.now(UTC)),
            ]
        )
    except UpdateError as exc:
        if exc.cause_response_code != "ConditionalCheckFailedException":
            raise
    return Outcome("cancelled", delivery.pk, detail=reason)


def carried(uid: str, known: delivery_message.Known) -> DeliveryModel:
    """Delivery ``uid`` as its message knows it, before it is read (:func:`is_carried`).

    Only what never changes is set; :func:`claim` fills in the rest from
    its conditional update, and :func:`loaded` reads it where needed first.
    """
    return DeliveryModel(
        uid,
        "delivery",
        tenant=known.tenant,
        subscription_id=known.subscription_id,
        event_type=known.event_type,
        event_id=known.event_id,
        event_time=known.event_time,
    )


def is_carried(delivery: DeliveryModel) -> bool:
    """Whether ``delivery`` was built from its message and not read yet (no creation date)."""
    return delivery.created_date is None


def loaded(delivery: DeliveryModel) -> DeliveryModel | None:
    """``delivery`` as stored (read if it was only carried); None if it is gone."""
    return deliveries.get_delivery(delivery.pk) if is_carried(delivery) else delivery


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
    due is the claim's condition (:func:`claim`).
    """
    now = time.time() if now is None else now
    if known is not None:
        delivery = carried(uid, known)
    else:
        read = deliveries.get_delivery(uid)
        if read is None:
            return Outcome("skipped", uid, detail="no such delivery (expired or never created)")
        delivery = read
        if delivery.status in deliveries.FINAL_STATES:
            return Outcome("skipped", uid, detail=f"delivery already {delivery.status}")
        due = float(delivery.next_attempt_at or 0)
        if due - now > DUE_SLACK_SECONDS:
            return Outcome("not_due", uid, delay=due - now, detail="countdown not over")
    try:
        # Strongly consistent: an unsubscribe or deactivation is honoured at once.
        subscription = SubscriptionModel.get(
            delivery.tenant, delivery.subscription_id, consistent_read=True
        )
    except SubscriptionModel.DoesNotExist:
        return _cancel_loaded(delivery, "subscription deleted")
    if not subscription.is_active:
        return _cancel_loaded(delivery, "subscription inactive")
    if not is_carried(delivery) and deliveries.opened_before(delivery, subscription.deactivated_at):
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
        payload = deliveries.load_payload(delivery.event_id)
    if payload is None:
        return _finish_failed(delivery, "event payload expired")
    return Prepared(delivery, subscription, payload)


def _cancel_loaded(delivery: DeliveryModel, reason: str) -> Outcome:
    """:func:`_cancel`, reading a carried delivery first (skipped if gone or final)."""
    stored = loaded(delivery)
    if stored is None or stored.status in deliveries.FINAL_STATES:
        return Outcome("skipped", delivery.pk, detail="delivery finished or gone")
    return _cancel(stored, reason)


def _finish_failed(delivery: DeliveryModel, reason: str) -> Outcome:
    delivery.update(
        actions=[
            DeliveryModel.status.set(deliveries.FAILED),
            DeliveryModel.modified_date.set(datetime.now(UTC)),
        ]
    )
    notice = operational_events.delivery_ended(
        delivered=False,
        delivery=delivery.pk,
        subscription_id=delivery.subscription_id,
        tenant=delivery.tenant,
        event_type=delivery.event_type,
        event_id=delivery.event_id,
        attempts=int(delivery.attempt_count or 0),
        response_http_status=_int_or_none(delivery.response_http_status),
        error=reason,
    )
    return Outcome("failed", delivery.pk, detail=reason, notices=(notice,))


def _int_or_none(value: Any) -> int | None:
    return None if value is None else int(value)


def claim(prepared: Prepared, *, manual: bool = False, lease_seconds: float = 0.0) -> bool:
    """Reserve the next attempt (versioned update and a lease); False if another attempt holds it.

    Every attempt, automatic or manual (an operator's resend), takes the same
    lease: ``lease_until`` moves ``lease_seconds`` ahead (the attempt's
    worst-case duration) on the condition that no other lease is live, so a
    resend and an automatic attempt of one delivery never POST at once
    (DESIGN §9). An automatic attempt also moves ``next_attempt_at`` to the
    lease's end, so another copy of the message that loads the delivery
    while this attempt is in flight finds it not due instead of due;
    :func:`record` then sets the real next time and drops the lease. If this
    process dies mid-attempt, the lease simply runs out. A ``manual`` attempt
    is counted apart, so it never uses up one of the subscription's
    automatic retries, and leaves the countdown as it was.
    """
    delivery = prepared.delivery
    now = time.time()
    ends = int(now + lease_seconds) + 1
    free = DeliveryModel.lease_until.does_not_exist() | (DeliveryModel.lease_until < int(now))
    if not manual:
        return _claim_due(prepared, now=now, ends=ends, free=free)
    actions: list[Any] = [
        DeliveryModel.attempt_count.set(int(delivery.attempt_count or 0) + 1),
        DeliveryModel.lease_until.set(ends),
        DeliveryModel.lease_manual.set(manual),
        DeliveryModel.manual_count.set(int(delivery.manual_count or 0) + 1),
    ]
    try:
        delivery.update(actions=actions, condition=free)
    except UpdateError as exc:
        if exc.cause_response_code == "ConditionalCheckFailedException":
            return False
        raise
    return True


def _claim_due(prepared: Prepared, *, now: float, ends: int, free: Any) -> bool:
    """An automatic attempt's claim: one conditional update that also reads the delivery.

    The condition is what :func:`prepare` checks on a delivery it read
    (still ``pending``, its countdown over, no live lease), so a delivery
    that was only carried by its message (:func:`carried`) is claimed
    without a read first: the update returns the whole item, which the
    attempt and its record use (README "Design notes": one call fewer per
    attempt). No version condition: the attempt count is an atomic ``ADD``.
    A delivery opened before its subscription's last deactivation is
    cancelled here (DESIGN §10) and the claim lost.
    """
    delivery = prepared.delivery
    was_carried = is_carried(delivery)
    if was_carried:
        delivery.version = 0  # the update ADDs 1 to the stored version; no condition on it
    actions: list[Any] = [
        DeliveryModel.attempt_count.add(1),
        DeliveryModel.lease_until.set(ends),
        DeliveryModel.lease_manual.set(False),
        DeliveryModel.next_attempt_at.set(ends),
    ]
    due = DeliveryModel.next_attempt_at.does_not_exist() | (
        DeliveryModel.next_attempt_at <= int(now + DUE_SLACK_SECONDS)
    )
    condition = DeliveryModel.pk.exists() & (DeliveryModel.status == deliveries.PENDING) & due
    try:
        delivery.update(actions=actions, condition=condition & free, add_version_condition=False)
    except UpdateError as exc:
        if exc.cause_response_code == "ConditionalCheckFailedException":
            return False
        raise
    subscription = prepared.subscription
    if (delivery.tenant, delivery.subscription_id) != (subscription.tenant, subscription.id):
        raise MalformedMessage("the message's delivery does not match its subscription")
    if was_carried and deliveries.opened_before(delivery, subscription.deactivated_at):
        # DESIGN §10: re-activating never resumes what was pending before.
        delivery.update(
            actions=[
                DeliveryModel.status.set(deliveries.CANCELLED),
                DeliveryModel.lease_until.remove(),
                DeliveryModel.lease_manual.remove(),
                DeliveryModel.modified_date.set(datetime.now(UTC)),
            ]
        )
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
    delivery = deliveries.get_delivery(uid)
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


def build_request(prepared: Prepared, *, timestamp: int) -> tuple[bytes, dict[str, str]]:
    """The signed body and headers of an attempt (DESIGN §4: signature headers, then extras)."""
    delivery, subscription = prepared.delivery, prepared.subscription
    body = build_envelope(
        event_type=delivery.event_type,
        delivery_uuid=delivery.pk,
        event_time=delivery.event_time,
        payload=json.loads(prepared.payload.detail),
    )
    return body, signed_headers(subscription, delivery.pk, delivery.event_type, body, timestamp)


def signed_headers(
    subscription: SubscriptionModel, msg_id: str, event_type: str, body: bytes, timestamp: int
) -> dict[str, str]:
    """Signature headers (current secret, and the previous one during a rotation's
    grace period), then the subscription's additional headers (DESIGN §4)."""
    secret = unseal(subscription.sealed_secret_key) if subscription.sealed_secret_key else None
    previous: list[str] = []
    expires = subscription.previous_secret_expires_at
    if subscription.sealed_previous_secret_key and expires and float(expires) > time.time():
        previous.append(unseal(subscription.sealed_previous_secret_key))
    headers = signature_headers(
        secret=secret,
        msg_id=msg_id,
        timestamp=timestamp,
        body=body,
        event_type=event_type,
        previous_secrets=previous,
    )
    headers.update(subscription.additional_headers or {})
    return headers


def basic_auth(subscription: SubscriptionModel) -> tuple[str, str] | None:
    """``(username, password)`` of the subscription's basic auth, or None."""
    if subscription.auth is None:
        return None
    sealed = subscription.auth.sealed_password
    return subscription.auth.username, unseal(sealed) if sealed else ""


def attempt(prepared: Prepared, options: SendOptions) -> AttemptResult:
    """POST the delivery once; never raises for what the partner or network does."""
    body, headers = build_request(prepared, timestamp=int(time.time()))
    return _send_redacted(prepared.subscription, body, headers, options)


def _send_redacted(
    subscription: SubscriptionModel, body: bytes, headers: dict[str, str], options: SendOptions
) -> AttemptResult:
    """:func:`send`, with the subscription's own secrets redacted from what came back
    (a partner echoing the request: :mod:`oms_webhooks.delivery.request.redaction`)."""
    auth = basic_auth(subscription)
    result = send(subscription.target_url, body, headers, auth=auth, options=options)
    signing = [
        unseal(sealed)
        for sealed in (subscription.sealed_secret_key, subscription.sealed_previous_secret_key)
        if sealed
    ]
    secrets = secret_strings(headers=headers, auth=auth, signing_secrets=signing)
    return redact_result(result, secrets, limit=options.excerpt_bytes)


#: The event type of a ping (``POST /whisperer/hooks/{id}/ping/``); not in the catalogue.
PING_EVENT_TYPE = "ping"


def ping(subscription: SubscriptionModel, options: SendOptions) -> AttemptResult:
    """Send a signed ``ping`` event (payload ``{}``) to the subscription now.

    Nothing is recorded: a ping checks a partner's endpoint and signature
    code before real events flow. Works for an inactive subscription.
    """
    msg_id = uuid.uuid4().hex
    body = build_envelope(
        event_type=PING_EVENT_TYPE,
        delivery_uuid=msg_id,
        event_time=datetime.now(UTC).isoformat().replace("+00:00", "Z"),
        payload={},
    )
    headers = signed_headers(subscription, msg_id, PING_EVENT_TYPE, body, int(time.time()))
    return _send_redacted(subscription, body, headers, options)


def retry_after_seconds(value: str | None, *, now: float) -> float | None:
    """Seconds a ``Retry-After`` header asks for, or None
    (:mod:`oms_webhooks.delivery.retry.retry_after`)."""
    return parse_retry_after(value, now=now)


def next_delay(
    subscription: SubscriptionModel, retry_number: int, result: AttemptResult, *, now: float
) -> float:
    """Seconds until retry ``retry_number`` (0 = first retry).

    The policy's countdown, raised to a 429/503's ``Retry-After`` but never
    beyond the policy's own ``limit`` (or 12 hours without one).
    """
    config = subscription.retry_countdown_config
    delay = float(countdown_for(config, retry_number))
    asked = retry_after_seconds(result.retry_after, now=now)
    if asked is not None and asked > delay:
        limit = (config.get("kwargs") or {}).get("limit")
        cap = float(limit) if isinstance(limit, int) else float(MAX_RETRY_AFTER_SECONDS)
        delay = max(delay, min(asked, cap))
    return delay


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
    actions: list[Any] = [
        # The attempt itself lives on the delivery item until the next one.
        DeliveryModel.last_attempt.set(number),
        DeliveryModel.attempt_at.set(result.at),
        DeliveryModel.retry_count.set(retries_used),
        DeliveryModel.lease_until.remove(),
        DeliveryModel.lease_manual.remove(),
        DeliveryModel.expires_at.set(expires),
        DeliveryModel.response_time.set(result.response_time_ms),
        DeliveryModel.modified_date.set(datetime.now(UTC)),
    ]
    actions.append(
        DeliveryModel.response_http_status.set(result.status_code)
        if result.status_code is not None
        else DeliveryModel.response_http_status.remove()
    )
    actions.append(
        DeliveryModel.response_content.set(result.response_excerpt)
        if result.response_excerpt
        else DeliveryModel.response_content.remove()
    )
    actions.append(
        DeliveryModel.error.set(result.error) if result.error else DeliveryModel.error.remove()
    )
    if result.delivered:
        outcome = Outcome("delivered", delivery.pk, result=result)
        actions.append(DeliveryModel.status.set(deliveries.DELIVERED))
    elif result.is_gone:
        outcome = Outcome(
            "failed", delivery.pk, detail="410 Gone: subscription deactivated", result=result
        )
        actions.append(DeliveryModel.status.set(deliveries.FAILED))
    elif manual:
        kind: OutcomeKind = "retry" if delivery.status == deliveries.PENDING else "failed"
        outcome = Outcome(kind, delivery.pk, detail="manual attempt failed", result=result)
    elif retries_used >= int(subscription.max_retries):
        outcome = Outcome("failed", delivery.pk, detail="retries exhausted", result=result)
        actions.append(DeliveryModel.status.set(deliveries.FAILED))
    else:
        delay = next_delay(subscription, retries_used, result, now=now)
        outcome = Outcome("retry", delivery.pk, delay=delay, result=result)
        actions.append(DeliveryModel.next_attempt_at.set(int(now + delay)))
    delivery.update(actions=actions)
    if delivery.status in (deliveries.DELIVERED, deliveries.FAILED):
        outcome = replace(outcome, notices=(_ended(prepared, result, number),))
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
    previous.save()


def _ended(
    prepared: Prepared, result: AttemptResult, attempts: int
) -> operational_events.OperationalEvent:
    """``webhook.delivery.succeeded``/``failed`` for a delivery that just ended."""
    delivery = prepared.delivery
    error = result.error or (
        f"HTTP {result.status_code}" if result.status_code is not None else None
    )
    return operational_events.delivery_ended(
        delivered=result.delivered,
        delivery=delivery.pk,
        subscription_id=delivery.subscription_id,
        tenant=delivery.tenant,
        event_type=delivery.event_type,
        event_id=delivery.event_id,
        attempts=attempts,
        response_http_status=result.status_code,
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


class ResendRefused(Conflict):
    """409: a manual resend that cannot be made (delivered without force, subscription gone)."""


def load_for_resend(
    tenant: str, uid: str, *, force: bool, allowed: frozenset[str] | None = None
) -> Prepared:
    """Load delivery ``uid`` of ``tenant`` for an operator's resend.

    Works for an inactive subscription (an operator testing before
    re-enabling it), not for a deleted one.

    Raises:
        NotFound: no such delivery for this tenant.
        ResendRefused: already delivered (without ``force``), or the
            subscription or the event payload is gone.
    """
    delivery = deliveries.get_delivery(uid)
    if delivery is None or delivery.tenant != tenant:
        raise NotFound("delivery not found")
    if allowed is not None and delivery.event_type not in allowed:
        raise NotFound("delivery not found")
    if delivery.status == deliveries.DELIVERED and not force:
        raise ResendRefused(
            'the delivery was already delivered; send {"force": true} to resend it',
            {"force": ["required to resend a delivered delivery"]},
        )
    try:
        subscription = SubscriptionModel.get(tenant, delivery.subscription_id, consistent_read=True)
    except SubscriptionModel.DoesNotExist:
        raise ResendRefused("the subscription of this delivery was deleted") from None
    payload = deliveries.load_payload(delivery.event_id)
    if payload is None:
        raise ResendRefused("the event payload of this delivery has expired")
    return Prepared(delivery, subscription, payload)


def resend(
    tenant: str,
    uid: str,
    options: SendOptions,
    *,
    force: bool = False,
    allowed: frozenset[str] | None = None,
) -> Outcome:
    """Send delivery ``uid`` once now (manual resend) and record the attempt.

    Raises:
        NotFound, ResendRefused (see :func:`load_for_resend`); Conflict when
        another attempt of this delivery is being recorded at this moment.
    """
    prepared = load_for_resend(tenant, uid, force=force, allowed=allowed)
    if not claim(prepared, manual=True, lease_seconds=lease_seconds(options)):
        raise Conflict("another attempt of this delivery is in progress; retry in a moment")
    result = attempt(prepared, options)
    # A resend counts as a probe of the target's circuit breaker (DESIGN §9).
    keys = breaker.keys_for(prepared.subscription.target_url, prepared.delivery.tenant)
    opened = breaker.report(keys, result, probe=True)
    return replace(record(prepared, result, manual=True), circuit_opened=opened)


class HostLimiter:
    """At most ``limit`` attempts at once per target ``host:port`` (one invocation's batch).

    Thread-safe; :meth:`acquire` is non-blocking: a busy host means the
    message comes back a second later without using up a retry.
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._lock = threading.Lock()
        self._busy: dict[str, int] = {}

    @staticmethod
    def key(url: str) -> str:
        """``host:port`` of ``url`` (default ports filled in)."""
        parts = urlsplit(url)
        port = parts.port or (443 if parts.scheme == "https" else 80)
        return f"{(parts.hostname or '').lower()}:{port}"

    @contextmanager
    def acquire(self, url: str) -> Iterator[bool]:
        """Yield True with a slot for ``url``'s host (released on exit), else False."""
        key = self.key(url)
        with self._lock:
            granted = self._busy.get(key, 0) < self.limit
            if granted:
                self._busy[key] = self._busy.get(key, 0) + 1
        try:
            yield granted
        finally:
            if granted:
                with self._lock:
                    self._busy[key] -= 1


#: Seconds a delivery waits when its host already has its share of attempts.
HOST_BUSY_DELAY_SECONDS = 1.0


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
    A lost claim is settled by :func:`after_lost_claim`.
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


def watched_attempt(prepared: Prepared, options: SendOptions, keys: breaker.Keys) -> AttemptResult:
    """:func:`attempt`, marking the target slow once it runs past ``slow_attempt_seconds``.

    A timeout marks it slow too; a quick answer lifts a slow mark (DESIGN §9).
    """
    threshold = get_settings().slow_attempt_seconds
    timer = threading.Timer(threshold, breaker.mark_slow, args=(keys,))
    timer.daemon = True
    timer.start()
    try:
        with breaker.in_flight(keys):
            result = attempt(prepared, options)
    finally:
        timer.cancel()
    if result.failure == "timeout":
        breaker.mark_slow(keys)
    elif result.status_code is not None and result.response_time_ms < threshold * 1000:
        breaker.note_fast(keys)
        breaker.clear_slow(keys)
    return result


def _held(prepared: Prepared, verdict: breaker.Verdict, *, now: float | None = None) -> Outcome:
    """A delivery behind an open circuit: hold it, or end it once held past its retention."""
    now = time.time() if now is None else now
    stored = loaded(prepared.delivery)
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
