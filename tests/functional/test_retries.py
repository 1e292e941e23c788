"""Retries on SQS: exhaustion, 410, Retry-After, isolation, resend, poison (DESIGN §4, §5).

On the local stack with real receivers on 127.0.0.1; schedules use short
countdowns so that the suite stays fast.
"""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from oms_webhooks.aws_clients import client as aws_client
from oms_webhooks.limits import SQS_MAX_VISIBILITY_SECONDS
from oms_webhooks.settings import get_settings
from oms_webhooks.storage.models import DeliveryModel
from oms_webhooks_local.publisher import publish_event
from tests.functional.helpers import FAST, api, subscribe, wait_until
from tests.receivers import Receiver, RecordedRequest, Response


def _only_delivery(client: requests.Session, status: str) -> dict[str, Any]:
    def find() -> list[dict[str, Any]]:
        results = client.get("/whisperer/hook_events/").json()["results"]
        return [d for d in results if d["status"] == status]

    (found,) = wait_until(find)
    return found


def test_retries_exhausted_end_failed_and_stop(
    client: requests.Session, receiver: Receiver
) -> None:
    receiver.respond(*[Response(status=500)] * 10)
    subscribe(
        client,
        event_type="package.created",
        target_url=receiver.url("/"),
        retry_countdown_config=FAST,
        max_retries=2,
    )
    publish_event("package.created", {"id": 1})
    attempts = receiver.wait_for(3, timeout=10)
    failed = _only_delivery(client, "failed")
    assert failed["retry_count"] == 2 and failed["delivered"] is False
    time.sleep(1.5)
    assert len(receiver.requests) == 3  # no fourth attempt
    gaps = [b.received_at - a.received_at for a, b in itertools.pairwise(attempts)]
    assert all(gap >= 0.9 for gap in gaps), gaps


def test_exponential_countdown_spacing(client: requests.Session, receiver: Receiver) -> None:
    receiver.respond(Response(status=502), Response(status=502))
    subscribe(
        client,
        event_type="shipment.created",
        target_url=receiver.url("/"),
        retry_countdown_config={"choice": "exponential", "kwargs": {"base": 2}},
        max_retries=3,
    )
    publish_event("shipment.created", {"id": 2})
    first, second, third = receiver.wait_for(3, timeout=40)
    # retry 0 waits 2**0 = 1 s, retry 1 waits 2**1 = 2 s: the lower bounds are the
    # countdown; the upper bounds only say "not a much longer schedule" and leave
    # seconds of room for a loaded 2-core CI machine (pollers and dispatchers queue up)
    assert 0.9 <= second.received_at - first.received_at < 12.0
    assert 1.9 <= third.received_at - second.received_at < 13.0
    assert _only_delivery(client, "delivered")["retry_count"] == 2


def test_410_gone_fails_the_delivery_and_deactivates_the_subscription(
    client: requests.Session, receiver: Receiver
) -> None:
    receiver.respond(Response(status=410, body=b"gone"))
    sub = subscribe(
        client,
        event_type="shipment.cancelled",
        target_url=receiver.url("/"),
        retry_countdown_config=FAST,
    )
    publish_event("shipment.cancelled", {"id": 3})
    receiver.wait_for(1)
    failed = _only_delivery(client, "failed")
    assert failed["response_http_status"] == 410
    # The delivery's record is written first, then the subscription is disabled.
    wait_until(lambda: client.get(f"/whisperer/hooks/{sub['id']}/").json()["is_active"] is False)
    time.sleep(1.5)
    assert len(receiver.requests) == 1


def test_retry_after_is_honoured(client: requests.Session, receiver: Receiver) -> None:
    receiver.respond(Response(status=429, headers={"Retry-After": "2"}))
    subscribe(
        client,
        event_type="package.status.packed",
        target_url=receiver.url("/"),
        retry_countdown_config=FAST,
    )
    publish_event("package.status.packed", {"id": 4})
    first, second = receiver.wait_for(2, timeout=10)
    assert second.received_at - first.received_at >= 1.9


def test_deactivating_mid_schedule_cancels(client: requests.Session, receiver: Receiver) -> None:
    receiver.respond(*[Response(status=500)] * 5)
    sub = subscribe(
        client,
        event_type="package.status.shipped",
        target_url=receiver.url("/"),
        retry_countdown_config={"choice": "fixed", "kwargs": {"seconds": 2}},
    )
    publish_event("package.status.shipped", {"id": 5})
    receiver.wait_for(1)
    patched = client.patch(f"/whisperer/hooks/{sub['id']}/", json={"is_active": False})
    assert patched.status_code == 200
    _only_delivery(client, "cancelled")
    assert len(receiver.requests) == 1


@pytest.fixture
def short_read_timeout(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("OMS_WEBHOOKS_READ_TIMEOUT_SECONDS", "3")
    get_settings.cache_clear()
    yield
    monkeypatch.undo()
    get_settings.cache_clear()


@pytest.mark.usefixtures("short_read_timeout")
def test_a_dead_endpoint_does_not_hold_back_a_healthy_one(
    stack: Any, client: requests.Session
) -> None:
    # GIVEN one endpoint that accepts and never answers, and a healthy one
    def responder(request: RecordedRequest) -> Response:
        return Response(delay=5.0) if request.path == "/dead" else Response(status=204)

    with Receiver(responder=responder) as receiver:
        for path in ("/dead", "/healthy"):
            subscribe(
                client,
                event_type="transfer.status.transferred",
                target_url=receiver.url(path),
                retry_countdown_config={"choice": "fixed", "kwargs": {"seconds": 60}},
            )
        # WHEN a few events are published (fewer than the local stack's 4 pollers)
        for n in range(3):
            publish_event("transfer.status.transferred", {"n": n})
        # THEN the first healthy delivery arrives while the first dead attempt still
        # waits for its answer (the test stack's read timeout is 3 s): measured from
        # the dead attempt's own start, not from publishing, so a loaded machine's
        # routing delay cannot fail it, while head-of-line blocking still would
        # (the first healthy one: it is routed with the first dead one; the later events'
        # own routing may come after that, on a loaded machine, and prove nothing here)
        wait_until(lambda: [r for r in receiver.requests if r.path == "/healthy"][2:], timeout=30)
        healthy = [r for r in receiver.requests if r.path == "/healthy"]
        dead = [r for r in receiver.requests if r.path == "/dead"]
        assert dead, "the dead endpoint saw no attempt"
        assert min(r.received_at for r in healthy) < dead[0].received_at + 3.0
        # AND the dead endpoint's attempts are logged as read timeouts, to be retried
        delivery = wait_until(
            lambda: [
                d
                for d in client.get("/whisperer/hook_events/?delivered=false").json()["results"]
                if d["status"] == "pending" and d["retry_count"] == 0 and d["response_time"]
            ],
            timeout=10,
        )[0]
        detail = client.get(f"/whisperer/hook_events/{delivery['uuid']}/").json()
        assert "read timeout" in (detail["attempts"][0]["error"] or "")


def test_manual_resend(client: requests.Session, receiver: Receiver, stack: Any) -> None:
    from oms_webhooks.api.tokens import create_token

    receiver.respond(Response(status=500, body=b"down"))
    sub = subscribe(
        client,
        event_type="stock_location.created",
        target_url=receiver.url("/"),
        retry_countdown_config={"choice": "fixed", "kwargs": {"seconds": 3600}},
    )
    publish_event("stock_location.created", {"id": 6})
    receiver.wait_for(1)
    pending = _only_delivery(client, "pending")
    path = f"/whisperer/hook_events/{pending['uuid']}/retry/"
    # a failing resend answers 200 with what the partner said
    receiver.respond(Response(status=503, body=b"still down"))
    answer = client.post(path)
    assert answer.status_code == 200, answer.text
    assert answer.json() | {"response_time": 0} == {
        "detail": "not delivered: the target answered 503",
        "response_status": 503,
        "response_content": "still down",
        "delivered": False,
        "response_time": 0,
    }
    # a resend that works delivers it, with no body at all
    ok = client.post(path)
    assert ok.status_code == 200 and ok.json()["delivered"] is True
    detail = client.get(f"/whisperer/hook_events/{pending['uuid']}/").json()
    assert [a["response_http_status"] for a in detail["attempts"]] == [500, 503, 200]
    assert detail["status"] == "delivered" and detail["retry_count"] == 0
    # delivered: refused without force, allowed with it
    again = client.post(path, json={})
    assert again.status_code == 409 and "force" in again.json()["errors"]
    assert client.post(path, json={"force": True}).json()["delivered"] is True
    assert client.post(path, json={"force": "yes"}).status_code == 400
    # other tenants cannot see or resend it
    _, other = create_token("resend-intruder")
    assert api(stack, other).post(path, json={"force": True}).status_code == 404
    # an inactive subscription can be tested; a deleted one cannot
    client.patch(f"/whisperer/hooks/{sub['id']}/", json={"is_active": False})
    assert client.post(path, json={"force": True}).status_code == 200
    client.delete(f"/whisperer/hooks/{sub['id']}/")
    gone = client.post(path, json={"force": True})
    assert gone.status_code == 409
    assert client.post("/whisperer/hook_events/" + "0" * 32 + "/retry/").status_code == 404


def test_malformed_delivery_message_goes_straight_to_the_dlq(stack: Any) -> None:
    settings = get_settings()
    sqs = aws_client("sqs")
    marker = f"poison-{time.time_ns()}"
    sqs.send_message(QueueUrl=settings.delivery_queue_url, MessageBody=marker)

    def in_dlq() -> bool:
        response = sqs.receive_message(
            QueueUrl=settings.delivery_dlq_url, MaxNumberOfMessages=10, WaitTimeSeconds=1
        )
        found = False
        for message in response.get("Messages", []):
            if message["Body"] == marker:
                found = True
                sqs.delete_message(
                    QueueUrl=settings.delivery_dlq_url, ReceiptHandle=message["ReceiptHandle"]
                )
            else:
                sqs.change_message_visibility(
                    QueueUrl=settings.delivery_dlq_url,
                    ReceiptHandle=message["ReceiptHandle"],
                    VisibilityTimeout=0,
                )
        return found

    wait_until(in_dlq, timeout=10)


def test_countdown_longer_than_12_hours_hops_within_the_visibility_cap(
    client: requests.Session, receiver: Receiver
) -> None:
    # GIVEN a 2-day countdown (moto does not enforce SQS's 12 h cap: we record what we ask)
    asked: list[int] = []

    def record_visibility(params: dict[str, Any], **_: Any) -> None:
        asked.append(int(params["VisibilityTimeout"]))

    sqs = aws_client("sqs")
    sqs.meta.events.register("provide-client-params.sqs.ChangeMessageVisibility", record_visibility)
    try:
        receiver.respond(Response(status=500))
        subscribe(
            client,
            event_type="stock_location.updated",
            target_url=receiver.url("/"),
            retry_countdown_config={"choice": "fixed", "kwargs": {"seconds": 2 * 86_400}},
            max_retries=1,
        )
        publish_event("stock_location.updated", {"id": 7})
        receiver.wait_for(1)
        pending = _only_delivery(client, "pending")
        wait_until(lambda: asked)
    finally:
        sqs.meta.events.unregister(
            "provide-client-params.sqs.ChangeMessageVisibility", record_visibility
        )
    # THEN the message is hidden for less than the 12 h cap, the record keeps the real due time
    assert 0 < max(asked) <= SQS_MAX_VISIBILITY_SECONDS - 60
    record = DeliveryModel.get(pending["uuid"], "delivery")
    assert record.next_attempt_at is not None
    assert abs(int(record.next_attempt_at) - (time.time() + 2 * 86_400)) < 60
    assert json.loads(json.dumps(pending))["retry_count"] == 0


def test_a_second_copy_arriving_mid_attempt_makes_no_second_post(
    client: requests.Session, receiver: Receiver, tenant: Any
) -> None:
    from oms_webhooks.delivery import pipeline
    from oms_webhooks.delivery import store as deliveries
    from oms_webhooks.delivery.attempt import attempt
    from oms_webhooks.delivery.claim import claim
    from oms_webhooks.delivery.outcome import Prepared
    from oms_webhooks.delivery.request.sender import SendOptions
    from oms_webhooks.routing import events_store
    from oms_webhooks.subscriptions.service import get_subscription

    # GIVEN a delivery (made directly: no SQS message, no poller involved)
    sub = subscribe(client, event_type="package.created", target_url=receiver.url("/"))
    record = get_subscription(tenant.name, sub["id"])
    event_id = f"race-{time.time_ns()}"
    events_store.get_store().put_payload(
        event_id, "package.created", "2026-11-29T10:00:00Z", '{"id": 1}'
    )
    delivery, _ = deliveries.create_delivery(
        record, event_id=event_id, event_type="package.created", event_time="t"
    )
    options = SendOptions(allow_private=True)
    # WHEN copy A has claimed its attempt and copy B of the message arrives meanwhile
    first = pipeline.prepare(delivery.pk)
    assert isinstance(first, Prepared)
    assert claim(first, lease_seconds=30)
    second = pipeline.dispatch(delivery.pk, options)
    # THEN B holds back without posting
    assert second.kind == "not_due" and receiver.requests == []
    pipeline.record(first, attempt(first, options))
    assert len(receiver.requests) == 1
    # AND when B comes back, the delivery is done
    assert pipeline.dispatch(delivery.pk, options).kind == "skipped"
    assert len(receiver.requests) == 1
