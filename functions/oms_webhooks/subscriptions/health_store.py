"""Where subscriptions' health is kept: DynamoDB behind a small interface (DESIGN §10).

:mod:`oms_webhooks.subscriptions.health` decides (when a subscription is
failing, when it is disabled and why) and calls a :class:`HealthStore`;
:func:`get_store` returns the DynamoDB one (:class:`DynamoHealthStore`), the
only one today.

How it is kept: a small item per subscription in the subscriptions table
(:class:`~oms_webhooks.storage.models.HealthModel`, key :func:`health_key`),
apart from the subscription, written with ``if_not_exists``-style updates:
the dispatcher never makes a versioned full put of the subscription, so it
never races a partner's PUT/PATCH. :mod:`oms_webhooks.subscriptions.store`
deletes it with its subscription (:func:`health_item`).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from functools import lru_cache
from typing import Protocol

from pynamodb.exceptions import TransactWriteError, UpdateError

from oms_webhooks.storage.models import HealthModel, SubscriptionModel
from oms_webhooks.storage.specs import bind_tables
from oms_webhooks.storage.transactions import transaction

__all__ = ["DynamoHealthStore", "HealthStore", "get_store", "health_item", "health_key"]


def health_key(tenant: str, subscription_id: str) -> tuple[str, str]:
    """The key of a subscription's health item: ``(<tenant>#health, <id>)``."""
    return f"{tenant}#health", subscription_id


def health_item(tenant: str, subscription_id: str) -> HealthModel:
    """An unsaved health item with only its key (to delete in a transaction)."""
    return HealthModel(*health_key(tenant, subscription_id))


class HealthStore(Protocol):
    """What :mod:`oms_webhooks.subscriptions.health` and the API's views need from storage."""

    def get(self, tenant: str, subscription_id: str) -> HealthModel | None:
        """The health item of one subscription, or None (healthy, never failed)."""
        ...

    def get_many(self, tenant: str, subscription_ids: Iterable[str]) -> dict[str, HealthModel]:
        """``{subscription id: health item}`` of those of ``tenant``'s that have one.

        One BatchGetItem per 100 ids.
        """
        ...

    def clear_failing(self, item: HealthModel) -> None:
        """Remove the item's ``failing_since`` if it is still set (one conditional write)."""
        ...

    def mark_failing(self, tenant: str, subscription_id: str, at: datetime) -> datetime | None:
        """Set ``failing_since`` to ``at`` unless it is set; the value stored after the write.

        One UpdateItem (it creates the item if needed).
        """
        ...

    def disable(self, subscription: SubscriptionModel, reason: str, at: datetime) -> bool:
        """Turn ``subscription`` inactive at ``at`` and keep ``reason`` on its health item.

        One ``TransactWriteItems``: the subscription's update is versioned (it
        also drops its fan-out key and stamps ``deactivated_at``); the health
        item gets ``disabled_reason`` and ``disabled_at``. False when
        DynamoDB cancelled it (the subscription changed meanwhile, or is gone):
        read it again and decide.
        """
        ...


class DynamoHealthStore:
    """:class:`HealthStore` on the subscriptions table (PynamoDB)."""

    def get(self, tenant: str, subscription_id: str) -> HealthModel | None:
        bind_tables()
        try:
            return HealthModel.get(*health_key(tenant, subscription_id))
        except HealthModel.DoesNotExist:
            return None

    def get_many(self, tenant: str, subscription_ids: Iterable[str]) -> dict[str, HealthModel]:
        bind_tables()
        keys = [health_key(tenant, sid) for sid in dict.fromkeys(subscription_ids)]
        if not keys:
            return {}
        return {item.id: item for item in HealthModel.batch_get(keys)}

    def clear_failing(self, item: HealthModel) -> None:
        bind_tables()
        try:
            item.update(
                actions=[HealthModel.failing_since.remove()],
                condition=HealthModel.failing_since.exists(),
            )
        except UpdateError as exc:  # cleared meanwhile by another success
            if exc.cause_response_code != "ConditionalCheckFailedException":
                raise

    def mark_failing(self, tenant: str, subscription_id: str, at: datetime) -> datetime | None:
        bind_tables()
        item = health_item(tenant, subscription_id)
        item.update(actions=[HealthModel.failing_since.set(HealthModel.failing_since | at)])
        return item.failing_since

    def disable(self, subscription: SubscriptionModel, reason: str, at: datetime) -> bool:
        bind_tables()
        try:
            # One transaction: nobody ever reads an inactive subscription
            # without its reason, and a crash cannot leave one half-disabled.
            with transaction() as tx:
                tx.update(
                    subscription,
                    actions=[
                        SubscriptionModel.is_active.set(False),
                        SubscriptionModel.fanout_event_type.remove(),
                        SubscriptionModel.deactivated_at.set(at),
                        SubscriptionModel.modified_date.set(at),
                    ],
                )
                tx.update(
                    health_item(subscription.tenant, subscription.id),
                    actions=[
                        HealthModel.disabled_reason.set(reason),
                        HealthModel.disabled_at.set(at),
                    ],
                )
        except TransactWriteError as exc:
            if exc.cause_response_code != "TransactionCanceledException":
                raise
            return False
        return True


@lru_cache(maxsize=1)
def get_store() -> HealthStore:
    """The store health uses: DynamoDB (one per process)."""
    return DynamoHealthStore()
