"""Delivery records behind a small interface: identity, creation (idempotent), claim, record.

A delivery is one event sent to one subscription. Its uuid is derived from
``(event id, tenant, subscription id)``, so processing one event twice (an
SQS redelivery, a router retry) finds the same record instead of making a
second one (DESIGN §4). Records expire after the delivery retention
(DynamoDB TTL ``expires_at``, DESIGN §4).

Fan-out, the pipeline (:mod:`~oms_webhooks.delivery.claim`,
:mod:`~oms_webhooks.delivery.pipeline`), resend, recover and the delivery log
(:mod:`~oms_webhooks.delivery.log`) decide what to write and call a
:class:`DeliveryStore`; :func:`get_store` returns the DynamoDB one
(:mod:`oms_webhooks.delivery.dynamodb_store`), the only one today. This module
holds the interface, the record's states and the pure helpers that build a
delivery record or read one (:func:`new_delivery`, :func:`carried`,
:func:`known_of`, :func:`opened_before`); it reaches DynamoDB only through
:func:`get_store` (:func:`create_delivery`, :func:`loaded`).
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from typing import TYPE_CHECKING, Any, Protocol

from oms_webhooks.delivery import message as delivery_message
from oms_webhooks.settings import get_settings
from oms_webhooks.storage.models import AttemptModel, DeliveryModel, SubscriptionModel

if TYPE_CHECKING:
    from oms_webhooks.delivery.request.sender import AttemptResult

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


def stamped(now: datetime) -> dict[str, Any]:
    """The dates of a record made at ``now``: created and modified then, expiring a
    retention later (:func:`expires_at`). Deliveries and recoveries both start so."""
    return {"created_date": now, "modified_date": now, "expires_at": expires_at()}


def new_delivery(
    subscription: SubscriptionModel,
    *,
    event_id: str,
    event_type: str,
    event_time: str,
    uid: str | None = None,
) -> DeliveryModel:
    """The record of a new, pending delivery of an event to ``subscription`` (not stored).

    ``uid`` defaults to :func:`delivery_uuid` (idempotent); a replay gives a new one.
    The log index keys (``log_tenant``, ``log_sort`` = ``<created ISO>#<uuid>``)
    are set here: only delivery items carry them.
    """
    now = datetime.now(UTC)
    uid = uid or delivery_uuid(event_id, subscription.tenant, subscription.id)
    known = delivery_message.Known(
        subscription.tenant, subscription.id, event_type, event_id, event_time
    )
    return carried(
        uid,
        known,
        status=PENDING,
        retry_count=0,
        attempt_count=0,
        log_tenant=subscription.tenant,
        log_sort=f"{now.isoformat()}#{uid}",
        **stamped(now),
    )


def create_delivery(
    subscription: SubscriptionModel,
    *,
    event_id: str,
    event_type: str,
    event_time: str,
    uid: str | None = None,
) -> tuple[DeliveryModel, bool]:
    """Create the delivery of an event to ``subscription`` unless it exists
    (:func:`new_delivery`, then :meth:`DeliveryStore.create`).

    Returns:
        ``(delivery, created)``: ``created`` is False when an earlier run
        made the record (its current state is returned).
    """
    item = new_delivery(
        subscription, event_id=event_id, event_type=event_type, event_time=event_time, uid=uid
    )
    return get_store().create(item)


@dataclass(frozen=True)
class LogFilter:
    """Which of a tenant's deliveries a log list asks for (None: any).

    ``created_gte``/``created_lte`` bound the creation time (inclusive);
    ``allowed`` is the token's scope of event types.
    """

    subscription_id: str | None = None
    event_type: str | None = None
    allowed: frozenset[str] | None = None
    created_gte: datetime | None = None
    created_lte: datetime | None = None


@dataclass(frozen=True)
class Recorded:
    """What recording attempt ``number`` writes besides its result: the retries used,
    the new expiry, and the delivery's next ``status`` or ``next_attempt_at`` (Unix
    seconds) when it moves."""

    number: int
    retries_used: int
    expires: datetime
    status: str | None = None
    next_attempt_at: int | None = None


@dataclass(frozen=True)
class LogRead:
    """One page read from the delivery log's index.

    ``entries``: the index's copies (the keys and
    :data:`~oms_webhooks.storage.models.DELIVERY_LOG_ATTRIBUTES` only), newest
    first; ``scanned``: entries read before the filter;
    ``last``: ``(log_sort, uuid)`` of the last entry read, None at the log's end.
    """

    entries: list[DeliveryModel]
    scanned: int
    last: tuple[str, str] | None


class DeliveryStore(Protocol):
    """What fan-out, the pipeline, resend, recover and the delivery log need from storage.

    Every write of an existing delivery item is conditioned on its ``version``
    (PynamoDB's optimistic lock) unless said otherwise.
    """

    def create(self, item: DeliveryModel) -> tuple[DeliveryModel, bool]:
        """Store ``item`` unless a delivery with its uuid exists (a conditional put).

        Returns:
            ``(item, True)``, or ``(the stored delivery, False)`` (read strongly consistent).
        """
        ...

    def get(self, uid: str) -> DeliveryModel | None:
        """Delivery ``uid`` (strongly consistent), or None."""
        ...

    def get_many(self, uids: list[str]) -> dict[str, DeliveryModel]:
        """``{uid: delivery}`` of those of ``uids`` that exist (``BatchGetItem`` calls of
        up to 100 keys, eventually consistent: half a read unit per item)."""
        ...

    def claim_due(
        self, delivery: DeliveryModel, *, lease_until: int, now: int, due_by: int
    ) -> bool:
        """An automatic attempt's claim: one update that also reads the delivery.

        ADDs 1 to ``attempt_count``, sets ``lease_until`` and ``next_attempt_at`` to
        ``lease_until`` and ``lease_manual`` to false, on the condition that the
        delivery exists, is ``pending``, is due by ``due_by`` (or has no
        ``next_attempt_at``) and holds no lease live at ``now``; no version
        condition. ``delivery`` (possibly only carried, never read) is filled
        in with the whole stored item.

        Returns:
            False when the condition failed (nothing written).
        """
        ...

    def claim_manual(self, delivery: DeliveryModel, *, lease_until: int, now: int) -> bool:
        """A manual attempt's claim: ``attempt_count`` and ``manual_count`` + 1 (from
        ``delivery``), ``lease_until`` set and ``lease_manual`` true, on the condition
        that no lease is live at ``now``.

        Returns:
            False when a condition failed (another lease, or a concurrent change).
        """
        ...

    def finish(self, delivery: DeliveryModel, status: str, *, drop_lease: bool = False) -> None:
        """Set ``status`` (and ``modified_date``); ``drop_lease`` removes the lease too.

        Raises:
            pynamodb.exceptions.UpdateError: a concurrent change (the version
                condition failed), or another DynamoDB error.
        """
        ...

    def cancel(self, delivery: DeliveryModel) -> bool:
        """Set ``cancelled`` (and ``modified_date``).

        Returns:
            False when the delivery changed meanwhile (nothing written).
        """
        ...

    def record(self, delivery: DeliveryModel, result: AttemptResult, recorded: Recorded) -> None:
        """Store an attempt's ``result`` on the delivery item and move the delivery.

        Sets ``last_attempt`` (``recorded.number``), ``attempt_at``,
        ``retry_count``, ``expires_at``, ``response_time``, ``modified_date``, the
        answer's status, excerpt and error (each removed when absent), drops the
        lease, and sets ``status`` and ``next_attempt_at`` when ``recorded`` has them.

        Raises:
            pynamodb.exceptions.UpdateError: a concurrent change, or another DynamoDB error.
        """
        ...

    def move_attempt(self, attempt: AttemptModel) -> None:
        """Write an earlier attempt to its own item (idempotent: a put)."""
        ...

    def attempts(self, uid: str, *, latest: int | None = None) -> list[AttemptModel]:
        """The attempt items of delivery ``uid``, oldest first: every one, or the
        ``latest`` ones (strongly consistent)."""
        ...

    def reopen(self, delivery: DeliveryModel, *, attempts_before: int) -> bool:
        """A recover re-opens a ``failed`` or ``cancelled`` delivery (DESIGN §10).

        ``pending``, retry count 0, due now, ``attempts_before_reopen`` =
        ``attempts_before``, ``reopened_date`` now, a fresh retention; on the
        condition that it is still ``failed`` or ``cancelled``.

        Returns:
            False when it changed meanwhile (another recovery re-opened it).
        """
        ...

    def log_page(
        self, tenant: str, wanted: LogFilter, *, after: tuple[str, str] | None, page_size: int
    ) -> LogRead:
        """One page of ``tenant``'s delivery log index, newest first (a Query of ``by-tenant``).

        The creation bounds of ``wanted`` are the index's range condition, its
        subscription, event type and scope a filter on the entries read;
        ``after`` is the ``(log_sort, uuid)`` to resume after; at most
        ``page_size`` entries are read.
        """
        ...


def opened_before(delivery: DeliveryModel, moment: datetime | None) -> bool:
    """Whether ``delivery`` was opened (created, or re-opened by a recover) before ``moment``.

    The dispatcher cancels such a delivery when ``moment`` is its
    subscription's latest deactivation (DESIGN §10).
    """
    if moment is None:
        return False
    opened = delivery.reopened_date or delivery.created_date
    return bool(opened < moment)


def carried(uid: str, known: delivery_message.Known, **attributes: Any) -> DeliveryModel:
    """Delivery ``uid`` as its message knows it, before it is read (:func:`is_carried`).

    Only what never changes is set (and ``attributes``: :func:`new_delivery`'s);
    :func:`oms_webhooks.delivery.claim.claim` fills in the rest from its
    conditional update, and :func:`loaded` reads it where needed first.
    """
    return DeliveryModel(
        uid,
        "delivery",
        tenant=known.tenant,
        subscription_id=known.subscription_id,
        event_type=known.event_type,
        event_id=known.event_id,
        event_time=known.event_time,
        **attributes,
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
    return get_store().get(delivery.pk) if is_carried(delivery) else delivery


@lru_cache(maxsize=1)
def get_store() -> DeliveryStore:
    """The store of deliveries: DynamoDB (one per process,
    :class:`~oms_webhooks.delivery.dynamodb_store.DynamoDeliveryStore`)."""
    from oms_webhooks.delivery.dynamodb_store import DynamoDeliveryStore  # it imports this module

    return DynamoDeliveryStore()
