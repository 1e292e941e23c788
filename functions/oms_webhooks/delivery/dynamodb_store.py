"""The DynamoDB delivery store: :class:`~oms_webhooks.delivery.store.DeliveryStore`
on the ``deliveries`` table, with PynamoDB.

:func:`oms_webhooks.delivery.store.get_store` returns it (one per process);
callers use that, never this module. How a delivery is kept
(:mod:`oms_webhooks.storage.specs`): one partition per delivery, the delivery
item (sk ``delivery``) holding its latest attempt, an attempt item per earlier
one (sk ``attempt#NNNN``), and the sparse ``by-tenant`` index of the log.
Where the interface says so, a write's failed condition is a False (nothing
written) rather than an error; any other DynamoDB error is raised.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from pynamodb.exceptions import PutError, UpdateError
from pynamodb.expressions.condition import Condition

from oms_webhooks.delivery.store import (
    CANCELLED,
    FAILED,
    PENDING,
    LogFilter,
    LogRead,
    Recorded,
    expires_at,
    is_carried,
)
from oms_webhooks.storage.models import AttemptModel, DeliveryModel
from oms_webhooks.storage.specs import bind_tables

if TYPE_CHECKING:
    from oms_webhooks.delivery.request.sender import AttemptResult


def _if_condition_holds(write: Any) -> bool:
    """Run ``write()``; False if DynamoDB refused it for a failed condition."""
    try:
        write()
    except (PutError, UpdateError) as exc:
        if exc.cause_response_code == "ConditionalCheckFailedException":
            return False
        raise
    return True


class DynamoDeliveryStore:
    """:class:`DeliveryStore` on the ``deliveries`` table (PynamoDB)."""

    def create(self, item: DeliveryModel) -> tuple[DeliveryModel, bool]:
        bind_tables()
        if _if_condition_holds(lambda: item.save(condition=DeliveryModel.pk.does_not_exist())):
            return item, True
        return DeliveryModel.get(item.pk, "delivery", consistent_read=True), False

    def get(self, uid: str) -> DeliveryModel | None:
        bind_tables()
        try:
            return DeliveryModel.get(uid, "delivery", consistent_read=True)
        except DeliveryModel.DoesNotExist:
            return None

    def get_many(self, uids: list[str]) -> dict[str, DeliveryModel]:
        bind_tables()
        return {item.pk: item for item in DeliveryModel.batch_get([(u, "delivery") for u in uids])}

    def claim_due(
        self, delivery: DeliveryModel, *, lease_until: int, now: int, due_by: int
    ) -> bool:
        bind_tables()
        if is_carried(delivery):
            delivery.version = 0  # the update ADDs 1 to the stored version; no condition on it
        actions: list[Any] = [
            DeliveryModel.attempt_count.add(1),
            DeliveryModel.lease_until.set(lease_until),
            DeliveryModel.lease_manual.set(False),
            DeliveryModel.next_attempt_at.set(lease_until),
        ]
        due = DeliveryModel.next_attempt_at.does_not_exist() | (
            DeliveryModel.next_attempt_at <= due_by
        )
        condition = DeliveryModel.pk.exists() & (DeliveryModel.status == PENDING) & due
        return _if_condition_holds(
            lambda: delivery.update(
                actions=actions, condition=condition & _free(now), add_version_condition=False
            )
        )

    def claim_manual(self, delivery: DeliveryModel, *, lease_until: int, now: int) -> bool:
        bind_tables()
        actions: list[Any] = [
            DeliveryModel.attempt_count.set(int(delivery.attempt_count or 0) + 1),
            DeliveryModel.lease_until.set(lease_until),
            DeliveryModel.lease_manual.set(True),
            DeliveryModel.manual_count.set(int(delivery.manual_count or 0) + 1),
        ]
        return _if_condition_holds(lambda: delivery.update(actions=actions, condition=_free(now)))

    def finish(self, delivery: DeliveryModel, status: str, *, drop_lease: bool = False) -> None:
        bind_tables()
        actions: list[Any] = [DeliveryModel.status.set(status)]
        if drop_lease:
            actions += [DeliveryModel.lease_until.remove(), DeliveryModel.lease_manual.remove()]
        actions.append(DeliveryModel.modified_date.set(datetime.now(UTC)))
        delivery.update(actions=actions)

    def cancel(self, delivery: DeliveryModel) -> bool:
        return _if_condition_holds(lambda: self.finish(delivery, CANCELLED))

    def record(self, delivery: DeliveryModel, result: AttemptResult, recorded: Recorded) -> None:
        bind_tables()
        actions: list[Any] = [
            # The attempt itself lives on the delivery item until the next one.
            DeliveryModel.last_attempt.set(recorded.number),
            DeliveryModel.attempt_at.set(result.at),
            DeliveryModel.retry_count.set(recorded.retries_used),
            DeliveryModel.lease_until.remove(),
            DeliveryModel.lease_manual.remove(),
            DeliveryModel.expires_at.set(recorded.expires),
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
        if recorded.status is not None:
            actions.append(DeliveryModel.status.set(recorded.status))
        if recorded.next_attempt_at is not None:
            actions.append(DeliveryModel.next_attempt_at.set(recorded.next_attempt_at))
        delivery.update(actions=actions)

    def move_attempt(self, attempt: AttemptModel) -> None:
        bind_tables()
        attempt.save()

    def attempts(self, uid: str, *, latest: int | None = None) -> list[AttemptModel]:
        bind_tables()
        if latest is None:
            return list(
                AttemptModel.query(
                    uid, AttemptModel.sk.startswith("attempt#"), consistent_read=True
                )
            )
        return list(
            AttemptModel.query(
                uid,
                AttemptModel.sk.startswith("attempt#"),
                consistent_read=True,
                scan_index_forward=False,
                limit=latest,
                page_size=latest,
            )
        )[::-1]

    def reopen(self, delivery: DeliveryModel, *, attempts_before: int) -> bool:
        bind_tables()
        now = datetime.now(UTC)
        actions: list[Any] = [
            DeliveryModel.status.set(PENDING),
            DeliveryModel.retry_count.set(0),
            DeliveryModel.attempts_before_reopen.set(attempts_before),
            DeliveryModel.next_attempt_at.set(int(time.time())),
            DeliveryModel.reopened_date.set(now),
            DeliveryModel.modified_date.set(now),
            DeliveryModel.expires_at.set(expires_at()),
        ]
        condition = DeliveryModel.status.is_in(FAILED, CANCELLED)
        return _if_condition_holds(lambda: delivery.update(actions=actions, condition=condition))

    def log_page(
        self, tenant: str, wanted: LogFilter, *, after: tuple[str, str] | None, page_size: int
    ) -> LogRead:
        bind_tables()
        created_gte, created_lte = wanted.created_gte, wanted.created_lte
        subscription_id, event_type, allowed = (
            wanted.subscription_id,
            wanted.event_type,
            wanted.allowed,
        )
        range_condition: Condition | None = None
        if created_gte is not None and created_lte is not None:
            range_condition = DeliveryModel.log_sort.between(
                created_gte.isoformat(), f"{created_lte.isoformat()}#~"
            )
        elif created_gte is not None:
            range_condition = DeliveryModel.log_sort >= created_gte.isoformat()
        elif created_lte is not None:
            range_condition = DeliveryModel.log_sort <= f"{created_lte.isoformat()}#~"
        condition: Condition | None = None
        for cond in (
            DeliveryModel.subscription_id == subscription_id
            if subscription_id is not None
            else None,
            DeliveryModel.event_type == event_type if event_type is not None else None,
            DeliveryModel.event_type.is_in(*sorted(allowed)) if allowed is not None else None,
        ):
            if cond is not None:
                condition = cond if condition is None else condition & cond
        last_key = None
        if after is not None:
            last_key = {
                "log_tenant": {"S": tenant},
                "log_sort": {"S": after[0]},
                "pk": {"S": after[1]},
                "sk": {"S": "delivery"},
            }
        pages = DeliveryModel.by_tenant.query(
            tenant,
            range_key_condition=range_condition,
            filter_condition=condition,
            scan_index_forward=False,
            last_evaluated_key=last_key,
            page_size=page_size,
        ).page_iter
        page = next(pages)
        entries = [DeliveryModel.from_raw_data(raw) for raw in page.get("Items", [])]
        last = pages.last_evaluated_key
        return LogRead(
            entries,
            pages.total_scanned_count,
            None if last is None else (last["log_sort"]["S"], last["pk"]["S"]),
        )


def _free(now: int) -> Condition:
    """No lease on the delivery is live at ``now`` (Unix seconds)."""
    free: Condition = DeliveryModel.lease_until.does_not_exist() | (DeliveryModel.lease_until < now)
    return free
