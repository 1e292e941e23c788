"""Delivery retention: each attempt keeps the delivery a full retention (its TTL moves on)."""

from __future__ import annotations

import time
from typing import Any

import pytest

from oms_webhooks.delivery import pipeline
from oms_webhooks.delivery import store as deliveries
from oms_webhooks.delivery.request.sender import SendOptions
from oms_webhooks.routing import events_store
from oms_webhooks.settings import get_settings
from oms_webhooks.subscriptions.service import get_subscription
from tests.functional.helpers import api, subscribe


def test_each_attempt_keeps_the_delivery_a_full_retention(
    stack: Any, tenant: Any, receiver: Any
) -> None:
    client = api(stack, tenant.token)
    sub = subscribe(client, event_type="package.created", target_url=receiver.url("/"))
    record = get_subscription(tenant.name, sub["id"])
    event_id = f"ttl-{time.time_ns()}"
    events_store.get_store().put_payload(event_id, "package.created", "t", "{}")
    delivery, _ = deliveries.create_delivery(
        record, event_id=event_id, event_type="package.created", event_time="t"
    )
    retention = get_settings().delivery_retention_seconds
    payload = events_store.get_store().get_payload(event_id)
    assert payload is not None
    assert payload.expires_at.timestamp() == pytest.approx(time.time() + 2 * retention, abs=60)
    assert pipeline.dispatch(delivery.pk, SendOptions(allow_private=True)).kind == "delivered"
    after = deliveries.get_store().get(delivery.pk)
    assert after is not None and after.expires_at.timestamp() == pytest.approx(
        time.time() + retention, abs=60
    )
