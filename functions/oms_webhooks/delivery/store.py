"""Delivery records: identity, creation (idempotent), reading and attempts.

A delivery is one event sent to one subscription. Its uuid is derived from
``(event id, tenant, subscription id)``, so processing one event twice (an
SQS redelivery, a router retry) finds the same record instead of making a
second one (DESIGN §4). Records expire after the delivery retention
(DynamoDB TTL ``expires_at``, DESIGN §4).
"""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime

from pynamodb.exceptions import PutError

from oms_webhooks.delivery import message as delivery_message
from oms_webhooks.settings import get_settings
from oms_webhooks.storage.models import DeliveryModel, SubscriptionModel
from oms_webhooks.storage.specs import bind_tables

#: Namespace of delivery uuids (uuid5 over "<event id>/<tenant>/<subscription id>").
DELIVERY_NAMESPACE = uuid.UUID("6f1c3c0e-8f5e-4c55-9d0c-6b7e2f0c9a11")

PENDING, DELIVERED, FAILED, CANCELLED = "pending", "delivered", "failed", "cancelled"
#: States after which no attempt is made again (except a forced manual resend).
FINAL_STATES = frozenset({DELIVERED, FAILED, CANCELLED})


def delivery_uuid(event_id: str, tenant: str, subscription_id: str) -> str:
    """The 32-hex uuid of the delivery of ``event_id`` to one subscription.

    The same value is the ``hook_events`` uuid, the envelope's ``event.uuid``
    and the ``webhook-id`` header (DESIGN §3, §4).
    """
    return uuid.uuid5(DELIVERY_NAMESPACE, f"{event_id}/{tenant}/{subscription_id}").hex


def expires_at(retentions: int = 1) -> datetime:
    """Now plus ``retentions`` times the delivery retention (the TTL attribute's value).

    A delivery's record is kept for the retention after its *last* attempt
    (each attempt moves it): a schedule may itself last up to one retention
    (DESIGN §3). The event payload lives two retentions, so that it outlives
    every delivery made from it.
    """
    return datetime.fromtimestamp(
        time.time() + retentions * get_settings().delivery_retention_seconds, tz=UTC
    )


def create_delivery(
    subscription: SubscriptionModel,
    *,
    event_id: str,
    event_type: str,
    event_time: str,
    uid: str | None = None,
) -> tuple[DeliveryModel, bool]:
    """Create the delivery of an event to ``subscription`` unless it exists.

    ``uid`` defaults to :func:`delivery_uuid` (idempotent); a replay gives a
    new one.

    Returns:
        ``(delivery, created)``: ``created`` is False when an earlier run
        made the record (its current state is returned).
    """
    bind_tables()
    now = datetime.now(UTC)
    uid = uid or delivery_uuid(event_id, subscription.tenant, subscription.id)
    item = DeliveryModel(
        uid,
        "delivery",
        log_tenant=subscription.tenant,
        log_sort=f"{now.isoformat()}#{uid}",
        tenant=subscription.tenant,
        subscription_id=subscription.id,
        event_type=event_type,
        event_id=event_id,
        event_time=event_time,
        status=PENDING,
        retry_count=0,
        attempt_count=0,
        created_date=now,
        modified_date=now,
        expires_at=expires_at(),
    )
    try:
        item.save(condition=DeliveryModel.pk.does_not_exist())
    except PutError as exc:
        if exc.cause_response_code != "ConditionalCheckFailedException":
            raise
        return DeliveryModel.get(uid, "delivery", consistent_read=True), False
    return item, True


def opened_before(delivery: DeliveryModel, moment: datetime | None) -> bool:
    """Whether ``delivery`` was opened (created, or re-opened by a recover) before ``moment``.

    The dispatcher cancels such a delivery when ``moment`` is its
    subscription's latest deactivation (DESIGN §10).
    """
    if moment is None:
        return False
    opened = delivery.reopened_date or delivery.created_date
    return bool(opened < moment)


def get_delivery(uid: str) -> DeliveryModel | None:
    """The delivery ``uid`` (strongly consistent), or None."""
    bind_tables()
    try:
        return DeliveryModel.get(uid, "delivery", consistent_read=True)
    except DeliveryModel.DoesNotExist:
        return None


def carried(uid: str, known: delivery_message.Known) -> DeliveryModel:
    """Delivery ``uid`` as its message knows it, before it is read (:func:`is_carried`).

    Only what never changes is set; :func:`oms_webhooks.delivery.claim.claim` fills in the rest from
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


def known_of(delivery: DeliveryModel) -> delivery_message.Known:
    """What never changes about ``delivery``, for its message (:func:`carried` reverses it)."""
    return delivery_message.Known(
        delivery.tenant,
        delivery.subscription_id,
        delivery.event_type,
        delivery.event_id,
        delivery.event_time,
    )


def is_carried(delivery: DeliveryModel) -> bool:
    """Whether ``delivery`` was built from its message and not read yet (no creation date)."""
    return delivery.created_date is None


def loaded(delivery: DeliveryModel) -> DeliveryModel | None:
    """``delivery`` as stored (read if it was only carried); None if it is gone."""
    return get_delivery(delivery.pk) if is_carried(delivery) else delivery
