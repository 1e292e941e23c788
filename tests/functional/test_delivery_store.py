"""The deliveries and recoveries stores' contracts, against the local stack's DynamoDB (moto).

What the pipeline, resend and recover rely on: creation is idempotent, a
claim of a carried delivery reads it, a stale write is refused (the
version condition), a recover re-opens only an ended delivery, and a
recovery's progress keeps what a save leaves out.
"""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime
from typing import Any

from oms_webhooks.delivery import store as deliveries
from oms_webhooks.routing import recovery_store
from oms_webhooks.storage.models import RecoveryModel
from tests.functional.helpers import subscription_item


def _created() -> deliveries.DeliveryModel:
    delivery, created = deliveries.create_delivery(
        subscription_item(),
        event_id=uuid.uuid4().hex,
        event_type="package.created",
        event_time="2026-12-01T10:00:00Z",
    )
    assert created
    return delivery


def test_creating_a_delivery_twice_returns_the_stored_one(stack: Any) -> None:
    subscription, event_id = subscription_item(), uuid.uuid4().hex
    event = {"event_id": event_id, "event_type": "package.created", "event_time": "t"}
    first, created = deliveries.create_delivery(subscription, **event)
    assert created
    store = deliveries.get_store()
    # WHEN the same delivery is created again (a router retry, a moment later)
    again, created = store.create(deliveries.new_delivery(subscription, **event))
    # THEN nothing is written and the stored record comes back
    assert not created
    assert again.created_date == first.created_date and again.status == deliveries.PENDING
    assert store.get_many([first.pk, uuid.uuid4().hex]).keys() == {first.pk}


def test_a_claim_of_a_carried_delivery_reads_it_and_holds_a_lease(stack: Any) -> None:
    stored = _created()
    store = deliveries.get_store()
    carried = deliveries.carried(stored.pk, deliveries.known_of(stored))
    now = int(time.time())
    # WHEN a delivery known only from its message is claimed
    assert store.claim_due(carried, lease_until=now + 60, now=now, due_by=now + 1)
    # THEN the claim filled it in from the stored item, and a second claim is refused
    assert not deliveries.is_carried(carried)
    assert carried.created_date == stored.created_date and int(carried.attempt_count) == 1
    other = deliveries.carried(stored.pk, deliveries.known_of(stored))
    assert not store.claim_due(other, lease_until=now + 60, now=now, due_by=now + 1)
    assert not store.claim_manual(store.get(stored.pk) or stored, lease_until=now + 60, now=now)


def test_a_stale_delivery_is_not_cancelled(stack: Any) -> None:
    created = _created()
    store = deliveries.get_store()
    first, second = store.get(created.pk), store.get(created.pk)
    assert first is not None and second is not None
    assert store.cancel(first)
    # WHEN a copy read before that change is cancelled
    # THEN the version condition refuses it
    assert not store.cancel(second)
    assert (store.get(created.pk) or created).status == deliveries.CANCELLED


def test_only_an_ended_delivery_is_reopened(stack: Any) -> None:
    delivery = _created()
    store = deliveries.get_store()
    assert not store.reopen(delivery, attempts_before=0)  # still pending
    store.finish(delivery, deliveries.FAILED)
    assert store.reopen(delivery, attempts_before=2)
    reopened = store.get(delivery.pk)
    assert reopened is not None and reopened.status == deliveries.PENDING
    assert int(reopened.attempts_before_reopen) == 2 and reopened.reopened_date is not None


def test_saving_a_recoverys_progress_keeps_what_it_leaves_out(stack: Any) -> None:
    store = recovery_store.get_store()
    recovery_id = uuid.uuid4().hex
    now = datetime.now(UTC)
    item = RecoveryModel(
        *recovery_store.recovery_key(recovery_id),
        recovery_id=recovery_id,
        tenant="t",
        subscription_id="s",
        since=now,
        window_end=now,
        status="running",
        queued=0,
        skipped=0,
        cursor="c1",
        **deliveries.stamped(now),
    )
    store.put(item)
    # WHEN progress is saved with the cursor left out (None)
    store.save_progress(item, {"queued": 3, "cursor": None})
    # THEN the stored cursor stays, the count moves, and modified_date moves on
    stored = store.get(recovery_id)
    assert stored is not None and stored.cursor == "c1" and int(stored.queued) == 3
    assert stored.modified_date > now
    assert store.get(uuid.uuid4().hex) is None
