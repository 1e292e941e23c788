"""The delivery log's index copies only what never changes after creation (DESIGN §12).

Against the local stack's moto, which applies the INCLUDE projection to
query results as DynamoDB does: the list view (index page, then the items
from the table) must be the view read from the table, and what an attempt
changes (status, the answer, attempt count, lease, next attempt) stays out
of the index, so neither the claim nor the record writes an index copy.
"""

from __future__ import annotations

import socket
import uuid
from datetime import UTC, datetime
from typing import Any

import requests

from oms_webhooks.delivery import log as delivery_log
from oms_webhooks.delivery import store as deliveries
from oms_webhooks.storage.models import DELIVERY_LOG_ATTRIBUTES, DeliveryModel
from oms_webhooks_local.publisher import publish_event
from tests.functional.helpers import subscribe, subscription_item, wait_until


def test_list_view_from_the_index_is_the_view_from_the_table(stack: Any) -> None:
    # GIVEN a delivery that was claimed and then recorded as a failed attempt
    tenant = f"t-{uuid.uuid4().hex[:12]}"
    delivery, created = deliveries.create_delivery(
        subscription_item(tenant),
        event_id=uuid.uuid4().hex,
        event_type="package.created",
        event_time="2026-12-01T10:00:00Z",
    )
    assert created
    delivery.update(
        actions=[
            DeliveryModel.attempt_count.set(1),
            DeliveryModel.lease_until.set(2_000_000_000),
            DeliveryModel.next_attempt_at.set(2_000_000_000),
        ]
    )
    delivery.update(
        actions=[
            DeliveryModel.retry_count.set(0),
            DeliveryModel.response_http_status.set(503),
            DeliveryModel.response_content.set("try later"),
            DeliveryModel.response_time.set(12),
            DeliveryModel.modified_date.set(datetime.now(UTC)),
        ]
    )
    # WHEN the list reads it through the index and the detail through the table
    page = delivery_log.list_deliveries(tenant, limit=10)
    from_table = deliveries.get_store().get(delivery.pk)
    assert from_table is not None and len(page.items) == 1
    from_index = page.items[0]
    # THEN both views agree, field by field
    assert delivery_log.to_resource(from_index) == delivery_log.to_resource(from_table)
    assert delivery_log.to_resource(from_index)["response_http_status"] == 503
    assert from_table.attempt_count == 1 and from_table.lease_until == 2_000_000_000
    # ... and the index itself holds only the keys and what never changes
    raw = next(DeliveryModel.by_tenant.query(tenant).page_iter)["Items"]
    assert len(raw) == 1
    assert set(raw[0]) == {"pk", "sk", "log_tenant", "log_sort", *DELIVERY_LOG_ATTRIBUTES}


def test_filters_use_only_projected_attributes(stack: Any) -> None:
    tenant = f"t-{uuid.uuid4().hex[:12]}"
    subscription = subscription_item(tenant)
    delivery, _ = deliveries.create_delivery(
        subscription,
        event_id=uuid.uuid4().hex,
        event_type="package.created",
        event_time="2026-12-01T10:00:00Z",
    )
    delivery.update(actions=[DeliveryModel.status.set(deliveries.DELIVERED)])
    found = delivery_log.list_deliveries(
        tenant,
        limit=10,
        subscription_id=subscription.id,
        event_type="package.created",
        delivered=True,
    )
    assert [d.pk for d in found.items] == [delivery.pk]
    assert {"subscription_id", "event_type"} <= set(DELIVERY_LOG_ATTRIBUTES)
    # Filters on what an attempt changes apply to the items read from the table.
    assert not delivery_log.list_deliveries(tenant, limit=10, delivered=False).items
    assert not delivery_log.list_deliveries(tenant, limit=10, response_http_status=200).items
    delivery.update(actions=[DeliveryModel.response_http_status.set(200)])
    found = delivery_log.list_deliveries(tenant, limit=10, response_http_status=200)
    assert [d.pk for d in found.items] == [delivery.pk]
    assert found.items[0].status == deliveries.DELIVERED


def test_the_delivery_list_shows_the_last_attempts_error(client: requests.Session) -> None:
    with socket.socket() as closed:  # a port nobody listens on: connection refused
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    subscribe(
        client,
        event_type="transfer.status.in_transit",
        target_url=f"http://127.0.0.1:{port}/",
        max_retries=0,
    )
    publish_event("transfer.status.in_transit", {"id": 9})
    (item,) = wait_until(
        lambda: [
            d
            for d in client.get("/whisperer/hook_events/").json()["results"]
            if d["status"] == "failed"
        ],
        timeout=20,
    )
    assert item["response_http_status"] is None
    assert item["error"] and "refused" in item["error"].lower()
