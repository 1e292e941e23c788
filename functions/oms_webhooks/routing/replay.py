"""Replay (operator): send one kept event again as new deliveries (DESIGN §10).

Unlike recover, a replay makes *new* deliveries (new ids, so new
``webhook-id`` headers): the partner asked for the event again, it is not a
retry of the old message. It goes to the event type's current matching
subscriptions (active, every tenant, the sparse fan-out index; their payload
filters pass), or to one of them.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from oms_webhooks.delivery import message as delivery_message
from oms_webhooks.delivery import store as deliveries
from oms_webhooks.routing import events_store, filters
from oms_webhooks.subscriptions.store import get_store as subscription_store


class ReplayError(ValueError):
    """The event is not kept (expired or unknown), or the subscription does not match it."""


def replay(
    event_id: str, *, sqs: Any, queue_url: str, subscription_id: str | None = None
) -> list[tuple[str, str]]:
    """Create and enqueue new deliveries of kept event ``event_id``.

    Args:
        event_id: the EventBridge event id (the delivery log's ``event_id``).
        sqs: a boto3 SQS client; queue_url: the delivery queue's URL.
        subscription_id: only this subscription (it must be active and of
            the event's type).

    Returns:
        ``(subscription id, new delivery uuid)`` per delivery made.

    Raises:
        ReplayError: the event is not kept, or ``subscription_id`` is not an
            active subscription of its type.
    """
    payload = events_store.get_store().get_payload(event_id)
    if payload is None:
        raise ReplayError(f"event {event_id} is not kept (unknown, or older than the retention)")
    targets = list(subscription_store().active_of_type(payload.event_type))
    if subscription_id is not None:
        targets = [s for s in targets if s.id == subscription_id]
        if not targets:
            raise ReplayError(
                f"{subscription_id} is not an active subscription of {payload.event_type}"
            )
    detail = json.loads(payload.detail)
    passing = [s for s in targets if filters.matches(s.filter, detail)]
    if subscription_id is not None and not passing:
        raise ReplayError(f"the filter of {subscription_id} does not pass this event's payload")
    targets = passing
    made: list[tuple[str, str]] = []
    for subscription in targets:
        uid = uuid.uuid4().hex
        delivery, _ = deliveries.create_delivery(
            subscription,
            event_id=event_id,
            event_type=payload.event_type,
            event_time=payload.event_time,
            uid=uid,
        )
        body = delivery_message.encode(uid, payload.detail, deliveries.known_of(delivery))
        sqs.send_message(QueueUrl=queue_url, MessageBody=body)
        made.append((subscription.id, uid))
    return made
