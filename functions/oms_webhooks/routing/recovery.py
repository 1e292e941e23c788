"""Recover: send a subscription the kept events of a window it has not received (DESIGN §10).

``POST /whisperer/hooks/{id}/recover/`` (:func:`start`) checks the request,
stores a recovery item and puts one message on the recovery queue; it
answers at once, whatever the window (API Gateway's 29 s). The recovery
worker (:func:`run`, the ``recoverer`` handler) then walks the kept events of
the subscription's type in the window, oldest first
(:mod:`oms_webhooks.routing.kept_events`), and for each one opens its delivery — the
same delivery id as ever (uuid5 of event and subscription: a resent message
keeps its ``webhook-id``, as Standard Webhooks asks):

* absent → created (``pending``) and enqueued;
* ``failed`` or ``cancelled`` → re-opened: ``pending``, retry count 0,
  earlier attempts kept, and enqueued;
* ``pending`` or ``delivered`` → skipped (so calling recover twice sends
  each event once); so is an event the subscription's current payload
  filter (DESIGN §11) does not pass.

Deliveries are enqueued at most ``recover_rate`` per second (default 10), so
a recovering partner is not flooded and the delivery queue never fills
ahead of other partners' deliveries. A worker invocation stops before its
time runs out, saves its cursor and re-queues the recovery, which resumes
after the cursor. Without ``until`` the window ends ``router_cache_seconds``
after the call, so events a router still fanned out from a stale cache
(without the re-activated subscription) are covered too.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from oms_webhooks.delivery import message as delivery_message
from oms_webhooks.delivery import store as deliveries
from oms_webhooks.errors import Conflict, NotFound, ValidationFailed
from oms_webhooks.routing import events_store, filters, kept_events, recovery_store
from oms_webhooks.routing.recovery_store import recovery_key
from oms_webhooks.settings import get_settings
from oms_webhooks.storage.models import DeliveryModel, RecoveryModel, SubscriptionModel
from oms_webhooks.storage.views import attributes, numbers
from oms_webhooks.subscriptions import store as subscription_store
from oms_webhooks.subscriptions.service import get_subscription

RUNNING, DONE, STOPPED = "running", "done", "stopped"
CREATED, REOPENED, SKIPPED = "created", "reopened", "skipped"
#: Progress is saved at least this often while a recovery runs, in seconds.
SAVE_EVERY_SECONDS = 1.0


class InactiveSubscription(Conflict):
    """409: recover needs an active subscription (re-activate it first)."""


def start(
    tenant: str,
    subscription_id: str,
    since: datetime,
    until: datetime | None,
    *,
    sqs: Any,
    queue_url: str,
    allowed: frozenset[str] | None = None,
    now: datetime | None = None,
) -> RecoveryModel:
    """Check a recover request, store the recovery and queue it for the worker.

    Raises:
        NotFound: no such subscription for this tenant and scope.
        InactiveSubscription: the subscription is inactive.
        ValidationFailed: ``since`` before the delivery retention, or after ``until``.
    """
    subscription = get_subscription(tenant, subscription_id, allowed=allowed)
    if not subscription.is_active:
        raise InactiveSubscription(
            "the subscription is inactive; re-activate it before recovering",
            {"is_active": ["must be true to recover"]},
        )
    settings = get_settings()
    now = now or datetime.now(UTC)
    since = since.astimezone(UTC) if since.tzinfo else since.replace(tzinfo=UTC)
    if until is not None:
        until = until.astimezone(UTC) if until.tzinfo else until.replace(tzinfo=UTC)
    oldest = now - timedelta(seconds=settings.delivery_retention_seconds)
    if since < oldest:
        raise ValidationFailed(
            "since is before the retention: older events are no longer kept",
            {"since": [f"must be after {oldest.isoformat()} (the delivery retention)"]},
        )
    window_end = now + timedelta(seconds=settings.router_cache_seconds)
    end = min(until, window_end) if until is not None else window_end
    if until is not None and since > until:
        raise ValidationFailed("since is after until", {"since": ["must not be after until"]})
    if since > end:
        raise ValidationFailed("since is in the future", {"since": ["must not be in the future"]})
    recovery_id = uuid.uuid4().hex
    item = RecoveryModel(
        *recovery_key(recovery_id),
        recovery_id=recovery_id,
        tenant=tenant,
        subscription_id=subscription.id,
        since=since,
        until=until,
        window_end=end,
        status=RUNNING,
        queued=0,
        skipped=0,
        **deliveries.stamped(now),
    )
    recovery_store.get_store().put(item)
    sqs.send_message(QueueUrl=queue_url, MessageBody=json.dumps({"recovery": recovery_id}))
    return item


def get_recovery(
    tenant: str, subscription_id: str, recovery_id: str, *, allowed: frozenset[str] | None = None
) -> RecoveryModel:
    """The recovery ``recovery_id`` of one of ``tenant``'s subscriptions.

    Raises:
        NotFound: no such subscription or recovery for this tenant and scope.
    """
    get_subscription(tenant, subscription_id, allowed=allowed)
    if len(recovery_id) != 32 or not all(c in "0123456789abcdef" for c in recovery_id):
        raise NotFound("recovery not found")
    item = recovery_store.get_store().get(recovery_id)
    if item is None or item.tenant != tenant or item.subscription_id != subscription_id:
        raise NotFound("recovery not found")
    return item


def open_delivery(
    subscription: SubscriptionModel, payload_event_id: str, event_type: str, event_time: str
) -> tuple[DeliveryModel, str]:
    """Create or re-open the delivery of one kept event to ``subscription``.

    Returns:
        ``(delivery, CREATED | REOPENED | SKIPPED)``.
    """
    delivery, created = deliveries.create_delivery(
        subscription, event_id=payload_event_id, event_type=event_type, event_time=event_time
    )
    if created:
        return delivery, CREATED
    if delivery.status not in (deliveries.FAILED, deliveries.CANCELLED):
        return delivery, SKIPPED
    automatic = int(delivery.attempt_count or 0) - int(delivery.manual_count or 0)
    if not deliveries.get_store().reopen(delivery, attempts_before=automatic):
        return delivery, SKIPPED  # changed meanwhile (another recovery re-opened it)
    return delivery, REOPENED


def _save(item: RecoveryModel, **changes: Any) -> None:
    recovery_store.get_store().save_progress(item, changes)


def _still_active(subscription: SubscriptionModel) -> bool:
    """Whether the subscription still exists and is active (a strongly consistent read)."""
    current = subscription_store.get_store().get(subscription.tenant, subscription.id)
    return current is not None and bool(current.is_active)


def run(
    recovery_id: str,
    *,
    sqs: Any,
    delivery_queue_url: str,
    deadline: float,
    sleep: Callable[[float], None] = time.sleep,
) -> bool:
    """Work on recovery ``recovery_id`` until it is done or ``deadline`` (Unix seconds) nears.

    Returns:
        True when the recovery is finished (done, stopped, or unknown);
        False when it must be queued again to resume after its cursor.
    """
    item = recovery_store.get_store().get(recovery_id)
    if item is None or item.status != RUNNING:
        return True
    subscription = subscription_store.get_store().get(item.tenant, item.subscription_id)
    if subscription is None or not subscription.is_active:
        _save(item, status=STOPPED, finished_date=datetime.now(UTC))
        return True
    interval = 1.0 / get_settings().recover_rate
    queued, skipped = int(item.queued or 0), int(item.skipped or 0)
    cursor = item.cursor
    end = item.window_end
    next_slot = time.monotonic()
    last_save = time.monotonic()
    while True:
        pass_end = min(end, datetime.now(UTC))
        start = kept_events.sort_time(cursor) if cursor else item.since
        for kept in kept_events.find(subscription.event_type, start, pass_end, after=cursor):
            if time.time() >= deadline:
                _save(item, cursor=cursor, queued=queued, skipped=skipped)
                return False
            payload = events_store.get_store().get_payload(kept.event_id)
            body = None
            if payload is not None and filters.matches(
                subscription.filter, json.loads(payload.detail)
            ):
                delivery, state = open_delivery(
                    subscription, kept.event_id, payload.event_type, payload.event_time
                )
                if state != SKIPPED:
                    # The Detail and the delivery's fields ride along, as the router's
                    # messages do: the dispatcher reads neither the payload nor the delivery.
                    body = delivery_message.encode(
                        delivery.pk, payload.detail, deliveries.known_of(delivery)
                    )
            if body is None:
                skipped += 1
            else:
                wait = next_slot - time.monotonic()
                if wait > 0:
                    sleep(wait)
                next_slot = max(next_slot, time.monotonic()) + interval
                sqs.send_message(QueueUrl=delivery_queue_url, MessageBody=body)
                queued += 1
            cursor = kept.sort
            if time.monotonic() - last_save >= SAVE_EVERY_SECONDS:
                _save(item, cursor=cursor, queued=queued, skipped=skipped)
                last_save = time.monotonic()
                if not _still_active(subscription):
                    _save(item, status=STOPPED, finished_date=datetime.now(UTC))
                    return True
        if pass_end >= end:
            break
        if time.time() + 1.0 >= deadline:
            _save(item, cursor=cursor, queued=queued, skipped=skipped)
            return False
        # Never negative: a pass that ran past the window's end (a slow query, the
        # pacing's own sleep) leaves one more pass to do at once (time.sleep raises
        # ValueError on a negative length, which failed the record: the recovery stood
        # still until the queue's visibility timeout, 12 minutes).
        sleep(max(0.0, min(1.0, (end - datetime.now(UTC)).total_seconds() + 0.05)))
    _save(
        item,
        cursor=cursor,
        queued=queued,
        skipped=skipped,
        status=DONE,
        finished_date=datetime.now(UTC),
    )
    return True


def to_resource(item: RecoveryModel) -> dict[str, Any]:
    """The API view of a recovery (``GET .../recover/{recovery}/``)."""
    return {
        "recovery": item.recovery_id,
        "subscription": item.subscription_id,
        **attributes(item, "status since until window_end created_date finished_date"),
        **numbers(item, "queued skipped", absent=0),
    }


def resume_running(*, sqs: Any, queue_url: str) -> int:
    """Queue every running recovery again (the local stack after a restart).

    SQS messages are not kept across a restart of the local stack while the
    recovery items are: each running one resumes after its saved cursor
    (sending a second message for one still queued is harmless: deliveries
    are opened conditionally, so nothing is sent twice).

    Returns:
        how many recoveries were queued.
    """
    queued = 0
    for item in recovery_store.get_store().running(RUNNING):
        sqs.send_message(QueueUrl=queue_url, MessageBody=json.dumps({"recovery": item.recovery_id}))
        queued += 1
    return queued
