"""The claim reads the delivery: a router message carries what never changes (README cost).

On the local stack with a real receiver on 127.0.0.1: the router's messages
carry the delivery's tenant, subscription and event; the dispatcher
attempts from such a message with one conditional update as its only
access to the delivery item, skips a copy of it once the delivery is done,
and never attempts when the message names another subscription.
"""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

import pytest
import requests

from oms_webhooks.aws_clients import client as aws_client
from oms_webhooks.delivery import message as delivery_message
from oms_webhooks.delivery import pipeline
from oms_webhooks.delivery import store as deliveries
from oms_webhooks.delivery.message import MalformedMessage
from oms_webhooks.delivery.request.sender import SendOptions
from oms_webhooks.routing import fanout
from oms_webhooks.subscriptions.service import get_subscription
from tests.functional.helpers import subscribe
from tests.receivers import Receiver

OPTIONS = SendOptions(allow_private=True, connect_timeout=1.0, read_timeout=3.0)
TIME = "2026-12-01T10:00:00Z"


def _router_messages(event_type: str) -> list[delivery_message.DeliveryMessage]:
    sqs = aws_client("sqs")
    queue_url = sqs.create_queue(QueueName=f"known-test-{uuid.uuid4().hex[:12]}")["QueueUrl"]
    body = json.dumps(
        {
            "id": f"known-{uuid.uuid4().hex}",
            "detail-type": event_type,
            "source": "oms",
            "time": TIME,
            "detail": {"id": 1},
        }
    )
    result = fanout.fan_out(fanout.parse_event(body), sqs=sqs, queue_url=queue_url)
    bodies: list[str] = []
    deadline = time.monotonic() + 30
    while len(bodies) < result.sent and time.monotonic() < deadline:
        received = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10)
        bodies += [m["Body"] for m in received.get("Messages", [])]
    sqs.delete_queue(QueueUrl=queue_url)
    assert result.sent >= 1 and len(bodies) == result.sent
    return [delivery_message.decode(b) for b in bodies]


def test_router_messages_carry_the_delivery_and_the_claim_reads_it(
    client: requests.Session, tenant: Any, receiver: Receiver
) -> None:
    # GIVEN a subscription and the router's message for one event
    sub = subscribe(client, event_type="shipment.cancelled", target_url=receiver.url("/"))
    mine = [m for m in _router_messages("shipment.cancelled") if m.known is not None]
    (message,) = [m for m in mine if m.known and m.known.subscription_id == sub["id"]]
    stored = deliveries.get_store().get(message.delivery_uuid)
    assert stored is not None and message.known is not None
    # THEN it names the delivery's tenant, subscription and event as stored
    assert message.known == delivery_message.Known(
        stored.tenant, stored.subscription_id, stored.event_type, stored.event_id, TIME
    )
    # WHEN the dispatcher handles it, twice (SQS may deliver a message twice)
    first = pipeline.dispatch(
        message.delivery_uuid, OPTIONS, detail=message.detail, known=message.known
    )
    # (the copy on the slow lane: on a loaded machine the first attempt may pass
    # slow_attempt_seconds, and the main lane would divert the copy before its claim)
    again = pipeline.dispatch(
        message.delivery_uuid, OPTIONS, detail=message.detail, known=message.known, lane="slow"
    )
    # THEN one attempt was made and recorded from the claimed item, the copy skipped
    assert first.kind == "delivered", first
    assert again.kind == "skipped", again
    assert len(receiver.requests) == 1
    after = deliveries.get_store().get(message.delivery_uuid)
    assert after is not None and after.attempt_count == 1 and after.last_attempt == 1
    assert after.lease_until is None and after.status == deliveries.DELIVERED
    sent = json.loads(receiver.requests[0].body)
    assert sent["event"] == {"type": "shipment.cancelled", "uuid": stored.pk, "time": TIME}


def test_a_message_naming_another_subscription_makes_no_attempt(
    client: requests.Session, tenant: Any, receiver: Receiver
) -> None:
    # GIVEN a delivery to one subscription, and a message that names another
    sub = subscribe(client, event_type="package.status.packed", target_url=receiver.url("/a"))
    other = subscribe(client, event_type="package.status.packed", target_url=receiver.url("/b"))
    record = get_subscription(tenant.name, sub["id"])
    delivery, _ = deliveries.create_delivery(
        record, event_id=uuid.uuid4().hex, event_type="package.status.packed", event_time=TIME
    )
    wrong = delivery_message.Known(
        tenant.name, other["id"], "package.status.packed", delivery.event_id, TIME
    )
    # WHEN the dispatcher handles it, THEN it refuses it and sends nothing
    with pytest.raises(MalformedMessage):
        pipeline.dispatch(delivery.pk, OPTIONS, detail='{"id":1}', known=wrong)
    assert receiver.requests == []
