"""Kept events: every OMS event's payload item, found by type and time (DESIGN §10)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from oms_webhooks.routing import events_store, kept_events
from oms_webhooks.storage.models import DeliveryModel
from oms_webhooks.storage.specs import table_spec
from oms_webhooks_local.publisher import publish_event
from oms_webhooks_local.stack import LocalStack
from tests.functional.helpers import wait_until


def test_an_event_no_subscription_matched_is_kept_and_found_by_type_and_time(
    stack: LocalStack,
) -> None:
    # GIVEN events of a type nobody subscribes to in this test
    since = datetime.now(UTC)
    ids = [publish_event("package.status.packed_for_refund", {"n": n}) for n in range(12)]
    wait_until(lambda: all(events_store.get_store().get_payload(i) for i in ids))
    # THEN the index finds each one once, oldest first, and nothing of another type
    found = list(kept_events.find("package.status.packed_for_refund", since, datetime.now(UTC)))
    assert sorted(k.event_id for k in found) == sorted(ids)
    assert [k.sort for k in found] == sorted(k.sort for k in found)
    assert not list(kept_events.find("package.status.shipped", since, datetime.now(UTC)))
    # AND a window that ends before them finds none; a resumed read skips what was seen
    earlier = kept_events.find(
        "package.status.packed_for_refund", since - timedelta(hours=1), since
    )
    assert not {k.event_id for k in earlier} & set(ids)  # (other tests' events may be there)
    rest = list(
        kept_events.find(
            "package.status.packed_for_refund", since, datetime.now(UTC), after=found[4].sort
        )
    )
    assert rest == found[5:]


def test_the_kept_event_is_the_payload_item_and_keeps_its_first_time(stack: LocalStack) -> None:
    event_id = publish_event("package.status.cancelled", {"id": 1})
    first = wait_until(lambda: events_store.get_store().get_payload(event_id))
    # A router retry of the same event stores nothing new: its place in the index stays.
    events_store.get_store().put_payload(
        event_id, "package.status.cancelled", first.event_time, first.detail
    )
    again = events_store.get_store().get_payload(event_id)
    assert again is not None and again.kept_sort == first.kept_sort
    assert first.kept_key.startswith("package.status.cancelled#")


def test_the_index_is_sparse_keys_only_and_sharded() -> None:
    spec = table_spec(DeliveryModel)
    (index,) = [i for i in spec.indexes if i.name == "by-type-time"]
    assert index.projection == "KEYS_ONLY"
    keys = {
        events_store.kept_keys("package.created", f"e-{n}", datetime(2026, 5, 1, tzinfo=UTC))[0]
        for n in range(200)
    }
    assert keys == {
        f"package.created#2026-05-01#{s}" for s in range(events_store.KEPT_EVENT_SHARDS)
    }


def test_a_cursor_gives_back_its_time() -> None:
    moment = datetime(2026, 5, 1, 12, 30, 1, 250000, tzinfo=UTC)
    _, sort = events_store.kept_keys("package.created", "e-1", moment)
    assert kept_events.sort_time(sort) == moment
