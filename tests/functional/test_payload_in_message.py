"""The delivery message carries the event's Detail: no payload read per attempt (DESIGN §12).

On the local stack with a real receiver: the router's messages carry the
Detail exactly as stored; an attempt built from such a message sends that
Detail even when the payload item is gone (so it was not read), and a bare
message still reads the payload item.
"""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

import requests

from oms_webhooks.aws_clients import client as aws_client
from oms_webhooks.delivery import message as delivery_message
from oms_webhooks.delivery import pipeline
from oms_webhooks.delivery import store as deliveries
from oms_webhooks.delivery.request.sender import SendOptions
from oms_webhooks.routing import events_store, fanout
from oms_webhooks.storage.models import EventPayloadModel
from oms_webhooks.subscriptions.service import get_subscription
from tests.functional.helpers import subscribe
from tests.receivers import Receiver

OPTIONS = SendOptions(allow_private=True, connect_timeout=1.0, read_timeout=3.0)
DETAIL = {"id": 7, "name": "Ωmega ✓", "items": [1, 2.5, None]}


def _event_body(event_id: str) -> str:
    return json.dumps(
        {
            "id": event_id,
            "detail-type": "package.created",
            "source": "oms",
            "time": "2026-12-01T10:00:00Z",
            "detail": DETAIL,
        }
    )


def test_router_messages_carry_the_detail_as_stored(
    client: requests.Session, tenant: Any, receiver: Receiver
) -> None:
    # GIVEN a subscription and a queue of our own (the stack's pollers do not read it)
    subscribe(client, event_type="package.created", target_url=receiver.url("/"))
    sqs = aws_client("sqs")
    queue_url = sqs.create_queue(QueueName=f"payload-test-{uuid.uuid4().hex[:12]}")["QueueUrl"]
    event = fanout.parse_event(_event_body(f"inline-{uuid.uuid4().hex}"))
    # WHEN the event is fanned out to it
    result = fanout.fan_out(event, sqs=sqs, queue_url=queue_url)
    # THEN every message carries the Detail exactly as the payload item holds it
    bodies: list[str] = []
    deadline = time.monotonic() + 30
    while len(bodies) < result.sent and time.monotonic() < deadline:
        received = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10)
        bodies += [m["Body"] for m in received.get("Messages", [])]
    assert result.sent >= 1 and len(bodies) == result.sent
    stored = events_store.get_store().get_payload(event.event_id)
    assert stored is not None
    assert {delivery_message.decode(b).detail for b in bodies} == {stored.detail}
    sqs.delete_queue(QueueUrl=queue_url)


def _delivery(client: requests.Session, tenant: Any, url: str) -> tuple[str, str]:
    sub = subscribe(client, event_type="package.created", target_url=url)
    record = get_subscription(tenant.name, sub["id"])
    event_id = f"inline-{uuid.uuid4().hex}"
    detail = json.dumps(DETAIL, ensure_ascii=False, separators=(",", ":"))
    events_store.get_store().put_payload(
        event_id, "package.created", "2026-12-01T10:00:00Z", detail
    )
    delivery, _ = deliveries.create_delivery(
        record, event_id=event_id, event_type="package.created", event_time="2026-12-01T10:00:00Z"
    )
    return delivery.pk, event_id


def test_an_attempt_from_a_message_with_the_detail_reads_no_payload(
    client: requests.Session, tenant: Any, receiver: Receiver
) -> None:
    # GIVEN a delivery whose payload item is gone after its message was sent
    uid, event_id = _delivery(client, tenant, receiver.url("/"))
    stored = events_store.get_store().get_payload(event_id)
    assert stored is not None
    message = delivery_message.decode(delivery_message.encode(uid, stored.detail))
    EventPayloadModel(f"event#{event_id}", "payload").delete()
    # WHEN the dispatcher handles the message
    outcome = pipeline.dispatch(message.delivery_uuid, OPTIONS, detail=message.detail)
    # THEN the partner got the Detail from the message
    assert outcome.kind == "delivered", outcome
    sent = json.loads(receiver.requests[-1].body)
    assert sent["payload"] == DETAIL
    assert sent["event"]["uuid"] == uid


def test_a_bare_message_reads_the_payload_item(
    client: requests.Session, tenant: Any, receiver: Receiver
) -> None:
    uid, _ = _delivery(client, tenant, receiver.url("/"))
    assert pipeline.dispatch(uid, OPTIONS).kind == "delivered"
    assert json.loads(receiver.requests[-1].body)["payload"] == DETAIL
    # ... and without the item it cannot be built
    uid2, event_id2 = _delivery(client, tenant, receiver.url("/other"))
    EventPayloadModel(f"event#{event_id2}", "payload").delete()
    outcome = pipeline.dispatch(uid2, OPTIONS)
    assert (outcome.kind, outcome.detail) == ("failed", "event payload expired")
