"""The delivery log answers within bounds, however large the log (third attack run).

The list's filters (``webhook``, ``event_type``, ``delivered``,
``response_http_status``, the token scope) are DynamoDB filter expressions,
applied after the read. Paging by ``limit + 1`` entries, a filter that
matched rarely read the tenant's whole log in one request: 2,000 deliveries
and ``?limit=1&webhook=<id>`` ran past API Gateway's 29 s (504) and held the
local API for minutes. Now a request reads at most
``delivery_log.MAX_ENTRIES_READ`` entries and answers with what it found and
a cursor after the last entry read; following the cursors finds everything,
once, newest first.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import pytest

from oms_webhooks.delivery import log as delivery_log
from oms_webhooks.delivery import store as deliveries
from oms_webhooks.storage.models import AttemptModel, SubscriptionModel
from tests.functional.helpers import subscription_item

#: A small read bound (the production one is 1,000), so the test needs few deliveries.
READ_BOUND = 10


def _deliver(subscription: SubscriptionModel) -> str:
    delivery, created = deliveries.create_delivery(
        subscription,
        event_id=uuid.uuid4().hex,
        event_type=subscription.event_type,
        event_time="2026-12-01T10:00:00Z",
    )
    assert created
    return str(delivery.pk)


def _follow(tenant: str, **filters: Any) -> list[list[str]]:
    """Every page's delivery ids, following the cursors to the end."""
    pages: list[list[str]] = []
    cursor = None
    while True:
        page = delivery_log.list_deliveries(tenant, cursor=cursor, **filters)
        assert len(page.items) <= filters.get("limit", delivery_log.DEFAULT_PAGE_SIZE)
        pages.append([d.pk for d in page.items])
        if page.next_cursor is None:
            return pages
        cursor = page.next_cursor
        assert len(pages) < 50, "the cursors never end"


def test_a_rare_filter_answers_within_the_read_bound_and_its_cursors_find_the_match(
    stack: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(delivery_log, "MAX_ENTRIES_READ", READ_BOUND)
    # GIVEN a tenant whose oldest delivery is the only one of its subscription,
    # under 24 newer deliveries of another subscription
    tenant = f"t-{uuid.uuid4().hex[:12]}"
    rare = subscription_item(tenant, event_type="shipment.created")
    common = subscription_item(tenant)
    wanted = _deliver(rare)
    newer = [_deliver(common) for _ in range(24)]
    # WHEN the log is listed for the rare subscription, one delivery a page
    pages = _follow(tenant, subscription_id=rare.id, limit=1)
    # THEN the first answer stops at the read bound: nothing found yet, and a cursor
    assert pages[0] == []
    # ... and following the cursors finds the one delivery exactly once
    assert [pk for page in pages for pk in page] == [wanted]
    assert len(pages) <= -(-25 // READ_BOUND) + 1
    # ... a filter on another field too (the event type)
    assert [
        pk for page in _follow(tenant, event_type="shipment.created", limit=5) for pk in page
    ] == [wanted]
    # ... while a filter that matches everything still fills its pages, newest first
    all_pages = _follow(tenant, event_type=None, delivered=False, limit=7)
    assert [pk for page in all_pages for pk in page] == [*reversed(newer), wanted]
    assert [len(page) for page in all_pages[:-1]] == [7] * (len(all_pages) - 1)


def test_unfiltered_pages_are_full_and_end_without_a_cursor(
    stack: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(delivery_log, "MAX_ENTRIES_READ", READ_BOUND)
    tenant = f"t-{uuid.uuid4().hex[:12]}"
    subscription = subscription_item(tenant)
    made = [_deliver(subscription) for _ in range(12)]
    pages = _follow(tenant, limit=4)
    assert pages == [made[::-1][0:4], made[::-1][4:8], made[::-1][8:12]]


def test_the_detail_view_shows_the_latest_attempts_oldest_first(
    stack: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Manual resends add attempts without a bound: 600 of them made a 7.5 MB
    # detail answer, over Lambda's 6 MB response limit (a 502 on AWS).
    monkeypatch.setattr(delivery_log, "MAX_ATTEMPTS_SHOWN", 5)
    tenant = f"t-{uuid.uuid4().hex[:12]}"
    uid = _deliver(subscription_item(tenant))
    for number in range(8):
        AttemptModel(
            uid,
            f"attempt#{number:04d}",
            at=datetime.now(UTC),
            response_http_status=500,
            response_time=number,
            response_content="x" * 100,
        ).save()
    view, _ = delivery_log.to_detail(delivery_log.get_delivery(tenant, uid))
    assert [a["response_time"] for a in view["attempts"]] == [3, 4, 5, 6, 7]
    # ... while the attempts themselves stay, every one (the benchmarks count them)
    assert len(delivery_log.attempts_of(uid)) == 8


def test_attempt_keys_sort_as_their_numbers_past_9999() -> None:
    numbers = [1, 2, 9, 10, 999, 9_998, 9_999, 10_000, 10_001, 99_999, 100_000, 123_456_789]
    keys = [delivery_log.attempt_key(n) for n in numbers]
    assert sorted(keys) == keys
    assert keys[:2] == ["attempt#0001", "attempt#0002"]  # the keys already stored
    assert all(k.startswith("attempt#") for k in keys)


def test_the_detail_view_shows_the_latest_attempts_past_the_10000th(
    stack: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A delivery resent by hand past 9,999 attempts: attempt#10000 sorted
    # before attempt#9999, so the "latest" attempts shown were the old ones.
    monkeypatch.setattr(delivery_log, "MAX_ATTEMPTS_SHOWN", 3)
    tenant = f"t-{uuid.uuid4().hex[:12]}"
    uid = _deliver(subscription_item(tenant))
    for number in (9_998, 9_999, 10_000, 10_001):
        AttemptModel(
            uid,
            delivery_log.attempt_key(number),
            at=datetime.now(UTC),
            response_http_status=500,
            response_time=number,
        ).save()
    view, _ = delivery_log.to_detail(delivery_log.get_delivery(tenant, uid))
    assert [a["response_time"] for a in view["attempts"]] == [9_999, 10_000, 10_001]
    assert [a.response_time for a in delivery_log.attempts_of(uid)] == [
        9_998,
        9_999,
        10_000,
        10_001,
    ]
