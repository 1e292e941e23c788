"""``oms-webhooks events replay`` against the local stack (DESIGN §10)."""

from __future__ import annotations

import json

import requests
from click.testing import CliRunner

from oms_webhooks_local.cli import main
from oms_webhooks_local.publisher import publish_event
from oms_webhooks_local.stack import LocalStack
from tests.functional.helpers import subscribe
from tests.receivers import Receiver


def _replay(stack: LocalStack, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(
        main,
        ["events", "replay", *args, "--endpoint-url", stack.aws_endpoint_url],
        catch_exceptions=False,
    )
    return result.exit_code, result.output


def test_replay_sends_a_kept_event_again_as_new_deliveries(
    stack: LocalStack, client: requests.Session
) -> None:
    with Receiver() as first, Receiver() as second:
        a = subscribe(client, event_type="transfer.status.in_transit", target_url=first.url("/"))
        b = subscribe(client, event_type="transfer.status.in_transit", target_url=second.url("/"))
        event_id = publish_event("transfer.status.in_transit", {"id": "t-1"})
        original = first.wait_for(1, timeout=10)[0]
        second.wait_for(1, timeout=10)
        # WHEN the operator replays it to one subscription
        code, output = _replay(stack, event_id, "--subscription", a["id"])
        assert code == 0, output
        # THEN that partner gets the same payload under a new webhook-id; the other nothing
        again = first.wait_for(2, timeout=10)[1]
        assert json.loads(again.body)["payload"] == {"id": "t-1"}
        assert again.headers["webhook-id"] != original.headers["webhook-id"]
        assert again.headers["webhook-id"] in output
        # WHEN replayed to every matching subscription, THEN both get it once more
        code, output = _replay(stack, event_id)
        assert code == 0, output
        assert len(first.wait_for(3, timeout=10)) == 3
        assert len(second.wait_for(2, timeout=10)) == 2
        assert b["id"] in output


def test_replay_refuses_an_unknown_event_or_subscription(
    stack: LocalStack, client: requests.Session, receiver: Receiver
) -> None:
    code, output = _replay(stack, "00000000-0000-0000-0000-000000000000")
    assert code == 2 and "not kept" in output
    subscribe(client, event_type="stock_location.updated", target_url=receiver.url("/"))
    event_id = publish_event("stock_location.updated", {"id": 1})
    receiver.wait_for(1, timeout=10)
    code, output = _replay(stack, event_id, "--subscription", "nope")
    assert code == 2 and "not an active subscription" in output


def test_events_replay_has_help() -> None:
    result = CliRunner().invoke(main, ["events", "replay", "--help"], catch_exceptions=False)
    assert result.exit_code == 0 and "--subscription" in result.output


def test_a_replayed_delivery_message_carries_the_payload_and_the_delivery(
    stack: LocalStack, client: requests.Session, receiver: Receiver
) -> None:
    import time
    import uuid

    from oms_webhooks.aws_clients import client as aws_client
    from oms_webhooks.delivery import message as delivery_message
    from oms_webhooks.delivery import store as deliveries
    from oms_webhooks.routing import events_store, replay

    # GIVEN a kept event delivered once
    sub = subscribe(client, event_type="transfer.status.in_transit", target_url=receiver.url("/"))
    event_id = publish_event("transfer.status.in_transit", {"id": "t-2", "n": "ü"})
    receiver.wait_for(1, timeout=10)
    # WHEN it is replayed to the subscription onto a queue of the test's own
    sqs = aws_client("sqs")
    queue_url = sqs.create_queue(QueueName=f"replay-test-{uuid.uuid4().hex[:12]}")["QueueUrl"]
    try:
        ((_, uid),) = replay.replay(
            event_id, sqs=sqs, queue_url=queue_url, subscription_id=sub["id"]
        )
        bodies: list[str] = []
        deadline = time.monotonic() + 30
        while not bodies and time.monotonic() < deadline:
            received = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10)
            bodies += [m["Body"] for m in received.get("Messages", [])]
    finally:
        sqs.delete_queue(QueueUrl=queue_url)
    # THEN its message carries the Detail as stored and the delivery's unchanging fields,
    # as the router's do (the dispatcher reads neither the payload nor the delivery first)
    (message,) = [delivery_message.decode(b) for b in bodies]
    stored = deliveries.get_store().get(uid)
    payload = events_store.get_store().get_payload(event_id)
    assert stored is not None and payload is not None
    assert message.delivery_uuid == uid
    assert message.detail == payload.detail
    assert message.known == deliveries.known_of(stored)
    assert message.known.subscription_id == sub["id"]
