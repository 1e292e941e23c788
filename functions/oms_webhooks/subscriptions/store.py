"""Where subscriptions are kept: DynamoDB behind a small interface.

:mod:`oms_webhooks.subscriptions.service` decides what to write (with
:mod:`~oms_webhooks.subscriptions.rules`) and calls a
:class:`SubscriptionStore`; :func:`get_store` returns the DynamoDB one
(:class:`DynamoSubscriptionStore`), the only one today.

How it is kept (DESIGN §3): ``(tenant, target_url, event_type)`` is unique
by a guard item (hash ``<tenant>#targets``, range the SHA-256 of event type
and URL) written in the same transaction as the subscription; a tenant's
count of subscriptions is a counter item (``<tenant>#counts``) updated in
that transaction too, conditioned on the per-tenant limit. Every read and
write names the tenant in the key, so another tenant's subscription is
simply not found.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from functools import lru_cache
from typing import Protocol

from pynamodb.exceptions import PutError, TransactWriteError
from pynamodb.expressions.condition import Condition
from pynamodb.transactions import TransactWrite

from oms_webhooks.errors import Conflict, LimitExceeded, NotFound
from oms_webhooks.storage.models import SubscriptionModel, TargetGuardModel, TenantCounterModel
from oms_webhooks.storage.specs import bind_tables
from oms_webhooks.storage.transactions import transaction
from oms_webhooks.subscriptions.health_store import health_item

#: Tries of one TransactWriteItems that DynamoDB cancels for a transaction conflict.
CONFLICT_TRIES = 4


@dataclass(frozen=True)
class Filters:
    """What a list of subscriptions keeps (None: any); the token's scope is ``allowed``."""

    event_type: str | None = None
    target_url: str | None = None
    is_active: bool | None = None
    allowed: frozenset[str] | None = None


class SubscriptionStore(Protocol):
    """What the subscription service needs from storage (errors are the API's 4xx)."""

    def get(self, tenant: str, subscription_id: str) -> SubscriptionModel | None:
        """The subscription, read strongly consistent; None if absent."""
        ...

    def active_of_type(self, event_type: str) -> Iterator[SubscriptionModel]:
        """Every tenant's active subscriptions of ``event_type`` (the fan-out's read).

        The sparse ``by-event-type`` index holds only active subscriptions, so
        this reads exactly the matching ones (DESIGN §1: a query, never a
        scan); eventually consistent, paginated by PynamoDB.
        """
        ...

    def get_many(self, tenant: str, subscription_ids: Iterable[str]) -> list[SubscriptionModel]:
        """Those of ``tenant``'s subscriptions ``subscription_ids`` that exist, in no order.

        Eventually consistent: one BatchGetItem per 100 ids.
        """
        ...

    def insert(self, item: SubscriptionModel, *, limit: int) -> None:
        """Store a new subscription, its guard and +1 on its tenant's count.

        Raises:
            Conflict: a duplicate ``(tenant, target_url, event_type)``, or
                transaction conflicts that never cleared.
            LimitExceeded: the tenant has ``limit`` subscriptions already.
        """
        ...

    def replace(
        self, item: SubscriptionModel, *, old_key: tuple[str, str], reactivated: bool
    ) -> None:
        """Write a changed subscription (versioned); ``old_key`` is its ``(event_type,
        target_url)`` before the change; a re-activated one loses its health item.

        Raises:
            Conflict: a duplicate target, or a concurrent change (retry).
        """
        ...

    def save(self, item: SubscriptionModel) -> None:
        """Write a subscription whose keys did not change (versioned).

        Raises:
            Conflict: a concurrent change (retry).
        """
        ...

    def remove(self, item: SubscriptionModel) -> None:
        """Delete a subscription, its guard, -1 on its tenant's count, then its health.

        Raises:
            NotFound: it is gone already. Conflict: a concurrent change (retry).
        """
        ...

    def query(
        self, tenant: str, where: Filters, *, start_id: str | None, page_size: int
    ) -> Iterator[SubscriptionModel]:
        """``tenant``'s subscriptions in creation order after ``start_id``, filtered by ``where``.

        ``page_size``: items read per Query call (the iterator reads on as it is consumed).
        """
        ...


def duplicate() -> Conflict:
    """The 409 of a second subscription of one target_url to one event_type."""
    return Conflict(
        "a subscription of this target_url to this event_type already exists",
        {"target_url": ["already subscribed to this event_type"]},
    )


def guard_key(tenant: str, event_type: str, target_url: str) -> tuple[str, str]:
    """The key of the uniqueness guard of ``(tenant, target_url, event_type)``."""
    digest = hashlib.sha256(f"{event_type}\n{target_url}".encode()).hexdigest()
    return f"{tenant}#targets", digest


def _counter(tenant: str) -> TenantCounterModel:
    return TenantCounterModel(f"{tenant}#counts", "subscriptions")


def _conflicted(exc: TransactWriteError) -> bool:
    """Cancelled only because another write touched one of its items at the same moment."""
    codes = {reason.code for reason in exc.cancellation_reasons if reason is not None}
    return "TransactionConflict" in codes and "ConditionalCheckFailed" not in codes


def transact(write: Callable[[TransactWrite], None]) -> None:
    """Run one ``TransactWriteItems`` built by ``write``, retrying transaction conflicts.

    DynamoDB cancels a transaction with the reason ``TransactionConflict`` when
    another transaction touches one of its items at the same time (two creates
    of one tenant both update its counter item). That is nobody's input error:
    the transaction is built and sent again, up to :data:`CONFLICT_TRIES` times
    with jittered backoff (≤ 50 ms, 100 ms, 200 ms), as the AWS documentation
    on transaction conflict handling advises.

    Raises:
        TransactWriteError: a condition failed (the caller maps it to a 4xx),
            or another DynamoDB error.
        Conflict: still conflicting after every try (a 409: retry later).
    """
    for attempt in range(CONFLICT_TRIES):
        try:
            with transaction() as tx:
                write(tx)
            return
        except TransactWriteError as exc:
            if not _conflicted(exc):
                raise
        if attempt + 1 < CONFLICT_TRIES:
            time.sleep(secrets.randbelow(50 * 2**attempt + 1) / 1000)
    raise Conflict("a concurrent change to the same items kept conflicting; retry")


def _failed_conditions(exc: TransactWriteError) -> list[bool]:
    return [
        reason is not None and reason.code == "ConditionalCheckFailed"
        for reason in exc.cancellation_reasons
    ]


class DynamoSubscriptionStore:
    """:class:`SubscriptionStore` on the ``subscriptions`` table (PynamoDB)."""

    def get(self, tenant: str, subscription_id: str) -> SubscriptionModel | None:
        bind_tables()
        try:
            return SubscriptionModel.get(tenant, subscription_id, consistent_read=True)
        except SubscriptionModel.DoesNotExist:
            return None

    def active_of_type(self, event_type: str) -> Iterator[SubscriptionModel]:
        bind_tables()
        return SubscriptionModel.by_event_type.query(event_type)

    def get_many(self, tenant: str, subscription_ids: Iterable[str]) -> list[SubscriptionModel]:
        bind_tables()
        keys = [(tenant, sid) for sid in subscription_ids]
        return list(SubscriptionModel.batch_get(keys))

    def insert(self, item: SubscriptionModel, *, limit: int) -> None:
        bind_tables()
        guard = TargetGuardModel(
            *guard_key(item.tenant, item.event_type, item.target_url), subscription_id=item.id
        )
        counter = _counter(item.tenant)

        def write(tx: TransactWrite) -> None:
            tx.save(guard, condition=TargetGuardModel.id.does_not_exist())
            tx.save(item, condition=SubscriptionModel.id.does_not_exist())
            tx.update(
                counter,
                actions=[TenantCounterModel.total.add(1)],
                condition=TenantCounterModel.total.does_not_exist()
                | (TenantCounterModel.total < limit),
            )

        try:
            transact(write)
        except TransactWriteError as exc:
            failed = _failed_conditions(exc)
            if failed and failed[0]:
                raise duplicate() from None
            if len(failed) == 3 and failed[2]:
                raise LimitExceeded(
                    f"a tenant may have at most {limit} subscriptions; delete one first",
                    {"body": [f"at most {limit} subscriptions per tenant"]},
                ) from None
            raise

    def replace(
        self, item: SubscriptionModel, *, old_key: tuple[str, str], reactivated: bool
    ) -> None:
        bind_tables()
        tenant = item.tenant
        new_key = (item.event_type, item.target_url)

        def write(tx: TransactWrite) -> None:
            if new_key != old_key:
                old_guard = TargetGuardModel(*guard_key(tenant, *old_key), subscription_id=item.id)
                tx.delete(old_guard, condition=TargetGuardModel.subscription_id == item.id)
                new_guard = TargetGuardModel(*guard_key(tenant, *new_key), subscription_id=item.id)
                tx.save(new_guard, condition=TargetGuardModel.id.does_not_exist())
            tx.save(item)
            if reactivated:
                # Re-activated: failing_since and the disabled reason start afresh.
                tx.delete(health_item(tenant, item.id))

        try:
            transact(write)
        except TransactWriteError as exc:
            failed = _failed_conditions(exc)
            if new_key != old_key and len(failed) >= 3 and failed[1]:
                raise duplicate() from None
            if any(failed):
                raise Conflict(
                    "the subscription was changed concurrently; fetch it and retry"
                ) from None
            raise

    def save(self, item: SubscriptionModel) -> None:
        bind_tables()
        try:
            item.save()
        except PutError as exc:
            if exc.cause_response_code == "ConditionalCheckFailedException":
                raise Conflict("the subscription was changed concurrently; retry") from None
            raise

    def remove(self, item: SubscriptionModel) -> None:
        bind_tables()
        tenant = item.tenant
        guard = TargetGuardModel(
            *guard_key(tenant, item.event_type, item.target_url), subscription_id=item.id
        )

        def write(tx: TransactWrite) -> None:
            # Versioned: a concurrent change (a new target_url moves the
            # uniqueness guard) makes this fail instead of leaving a stale guard.
            tx.delete(item, condition=SubscriptionModel.id.exists())
            tx.delete(guard, add_version_condition=False)
            tx.update(_counter(tenant), actions=[TenantCounterModel.total.add(-1)])

        try:
            transact(write)
        except TransactWriteError as exc:
            if any(_failed_conditions(exc)):
                try:
                    SubscriptionModel.get(tenant, item.id, consistent_read=True)
                except SubscriptionModel.DoesNotExist:
                    raise NotFound("subscription not found") from None
                raise Conflict("the subscription was changed concurrently; retry") from None
            raise
        # Its health goes after it (an orphan left by a crash here is never read:
        # ids are not reused).
        health_item(tenant, item.id).delete()

    def query(
        self, tenant: str, where: Filters, *, start_id: str | None, page_size: int
    ) -> Iterator[SubscriptionModel]:
        bind_tables()
        condition: Condition | None = None
        event_type, target_url, is_active = where.event_type, where.target_url, where.is_active
        allowed = where.allowed
        for cond in (
            SubscriptionModel.event_type == event_type if event_type is not None else None,
            SubscriptionModel.target_url == target_url if target_url is not None else None,
            SubscriptionModel.is_active == is_active if is_active is not None else None,
            SubscriptionModel.event_type.is_in(*sorted(allowed)) if allowed is not None else None,
        ):
            if cond is not None:
                condition = cond if condition is None else condition & cond
        last_key = {"tenant": {"S": tenant}, "id": {"S": start_id}} if start_id else None
        results: Iterator[SubscriptionModel] = SubscriptionModel.query(
            tenant,
            filter_condition=condition,
            last_evaluated_key=last_key,
            page_size=page_size,
        )
        return results


@lru_cache(maxsize=1)
def get_store() -> SubscriptionStore:
    """The store the service uses: DynamoDB (one per process)."""
    return DynamoSubscriptionStore()
