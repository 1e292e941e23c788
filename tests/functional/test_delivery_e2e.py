"""End to end on the local stack: put_events → bus → router → SQS → dispatcher → partner.

Real parts only: moto's EventBridge, SQS and DynamoDB over HTTP, the local
pollers feeding the real router and dispatcher handlers, and real HTTP
receivers on 127.0.0.1 (DESIGN §1, §4, §6).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from pathlib import Path
from typing import Any

import pytest
import requests
from standardwebhooks.webhooks import Webhook

from oms_webhooks.storage.models import DeliveryModel
from oms_webhooks_local.publisher import publish_event
from tests.functional.helpers import api, subscribe, wait_until
from tests.receivers import Receiver, Response

EVENTS = Path(__file__).parents[1] / "cases" / "events"
SAMPLES = sorted(p.stem for p in EVENTS.glob("*.json"))


def _detail(event_type: str) -> dict[str, Any]:
    return dict(json.loads((EVENTS / f"{event_type}.json").read_text(encoding="utf-8")))


def _deliveries(client: requests.Session, **params: Any) -> list[dict[str, Any]]:
    response = client.get("/whisperer/hook_events/", params=params)
    assert response.status_code == 200, response.text
    return list(response.json()["results"])


@pytest.mark.parametrize("event_type", SAMPLES)
def test_each_sample_event_reaches_exactly_the_matching_subscriptions(
    client: requests.Session, receiver: Receiver, event_type: str
) -> None:
    # GIVEN a subscription to this type, one to another type, one inactive
    other = (
        "stock_location.created" if event_type != "stock_location.created" else "shipment.created"
    )
    wanted = subscribe(client, event_type=event_type, target_url=receiver.url("/wanted"))
    subscribe(client, event_type=other, target_url=receiver.url("/other"))
    subscribe(client, event_type=event_type, target_url=receiver.url("/inactive"), is_active=False)
    detail = _detail(event_type)
    # WHEN the OMS publishes the sample event
    event_id = publish_event(event_type, detail)
    # THEN exactly one POST reaches the matching, active subscription
    (request,) = receiver.wait_for(1)
    time.sleep(0.5)
    assert [r.path for r in receiver.requests] == ["/wanted"]
    envelope = json.loads(request.body.decode("utf-8"))
    assert envelope["payload"] == detail
    assert envelope["event"]["type"] == event_type
    assert request.headers["Content-Type"] == "application/json"
    assert request.headers["X-Whisperer-Event"] == event_type
    assert request.headers["webhook-id"] == envelope["event"]["uuid"]
    # AND the delivery log says what happened
    (logged,) = wait_until(lambda: [d for d in _deliveries(client) if d["delivered"]])
    assert logged["webhook"] == wanted["id"]
    assert logged["event_id"] == event_id
    assert logged["uuid"] == envelope["event"]["uuid"]
    assert logged["status"] == "delivered" and logged["response_http_status"] == 200


def test_payload_is_utf8_json_equal_to_the_detail(
    client: requests.Session, receiver: Receiver
) -> None:
    subscribe(client, event_type="package.created", target_url=receiver.url("/"))
    detail = {"name": "Ünïcödé — 包裹 📦", "nested": {"n": [1, 2.5, None, True]}, "empty": {}}
    publish_event("package.created", detail)
    (request,) = receiver.wait_for(1)
    assert "包裹 📦".encode() in request.body  # UTF-8 on the wire, not \\u escapes
    assert json.loads(request.body)["payload"] == detail


@pytest.mark.parametrize(
    "secret", ["plain-secret-ü", "whsec_" + base64.b64encode(b"k" * 24).decode()]
)
def test_both_signatures_verify(client: requests.Session, receiver: Receiver, secret: str) -> None:
    subscribe(
        client, event_type="shipment.created", target_url=receiver.url("/"), secret_key=secret
    )
    publish_event("shipment.created", {"id": 1})
    (request,) = receiver.wait_for(1)
    headers = {k: v for k, v in request.header_items}
    # Standard Webhooks, with the public library; a plain secret is passed base64-encoded
    key = secret if secret.startswith("whsec_") else base64.b64encode(secret.encode()).decode()
    assert Webhook(key).verify(request.body, headers) == json.loads(request.body)
    # the whisperer scheme, recomputed: HMAC-SHA256 keyed with the secret's UTF-8 bytes as given
    expected = hmac.new(secret.encode(), request.body, hashlib.sha256).hexdigest()
    assert request.headers["X-Whisperer-Signature"] == f"sha256={expected}"


def test_no_secret_no_signature_but_id_and_timestamp(
    client: requests.Session, receiver: Receiver
) -> None:
    subscribe(client, event_type="shipment.cancelled", target_url=receiver.url("/"))
    publish_event("shipment.cancelled", {"id": 2})
    (request,) = receiver.wait_for(1)
    assert request.headers["webhook-id"] and request.headers["webhook-timestamp"].isdigit()
    assert request.headers["webhook-signature"] is None
    assert request.headers["X-Whisperer-Signature"] is None


def test_additional_headers_and_basic_auth_arrive(
    client: requests.Session, receiver: Receiver
) -> None:
    subscribe(
        client,
        event_type="transfer.status.created",
        target_url=receiver.url("/"),
        additional_headers={"X-Partner-Key": "k-123"},
        config={"auth": {"auth_type": "basic", "username": "carrier", "password": "pä55"}},
    )
    publish_event("transfer.status.created", {"id": 3})
    (request,) = receiver.wait_for(1)
    assert request.headers["X-Partner-Key"] == "k-123"
    expected = base64.b64encode("carrier:pä55".encode()).decode()
    assert request.headers["Authorization"] == f"Basic {expected}"


def test_one_hundred_subscriptions_get_one_hundred_deliveries(
    client: requests.Session, receiver: Receiver
) -> None:
    for n in range(100):
        subscribe(client, event_type="transfer.status.in_transit", target_url=receiver.url(f"/{n}"))
    publish_event("transfer.status.in_transit", _detail("transfer.status.in_transit"))
    requests_seen = receiver.wait_for(100, timeout=30)
    time.sleep(0.5)
    assert sorted(r.path for r in receiver.requests) == sorted(f"/{n}" for n in range(100))
    assert len({r.headers["webhook-id"] for r in requests_seen}) == 100


def _sqs_record(body: str, message_id: str = "m-1") -> dict[str, Any]:
    now_ms = str(int(time.time() * 1000))
    return {
        "messageId": message_id,
        "receiptHandle": "not-a-real-handle",
        "body": body,
        "attributes": {
            "ApproximateReceiveCount": "1",
            "SentTimestamp": now_ms,
            "SenderId": "local",
            "ApproximateFirstReceiveTimestamp": now_ms,
        },
        "messageAttributes": {},
        "md5OfBody": hashlib.md5(body.encode()).hexdigest(),
        "eventSource": "aws:sqs",
        "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:oms-webhooks-ingress",
        "awsRegion": "us-east-1",
    }


class _Context:
    function_name = "test"
    memory_limit_in_mb = 256
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:test"
    aws_request_id = "test-request"

    @staticmethod
    def get_remaining_time_in_millis() -> int:
        return 60_000


def test_the_same_ingress_message_twice_makes_one_delivery(
    client: requests.Session, receiver: Receiver, tenant: Any
) -> None:
    from oms_webhooks.handlers import dispatcher, router

    sub = subscribe(client, event_type="package.status.packed", target_url=receiver.url("/"))
    event = {
        "version": "0",
        "id": "11111111-2222-3333-4444-" + sub["id"][-12:],
        "detail-type": "package.status.packed",
        "source": "oms",
        "account": "123456789012",
        "time": "2026-11-29T10:00:00Z",
        "region": "us-east-1",
        "resources": [],
        "detail": {"id": 7},
    }
    sqs_event = {"Records": [_sqs_record(json.dumps(event))]}
    # WHEN the router handles the same ingress message twice
    assert router.handler(sqs_event, _Context()) == {"batchItemFailures": []}
    assert router.handler(sqs_event, _Context()) == {"batchItemFailures": []}
    # THEN one delivery record and one POST
    (request,) = receiver.wait_for(1)
    # (other tests' subscriptions to this type get their own deliveries: count ours)
    mine = (DeliveryModel.event_id == event["id"]) & (DeliveryModel.tenant == tenant.name)
    records = list(DeliveryModel.scan(mine))
    assert len(records) == 1
    # AND the same delivery message handled again, once the first copy has
    # recorded its attempt, makes no second POST (a copy arriving mid-attempt
    # is held back instead: test_retries.py)
    wait_until(lambda: records[0].refresh(consistent_read=True) or records[0].status == "delivered")
    message = json.dumps({"delivery": records[0].pk})
    assert dispatcher.handler({"Records": [_sqs_record(message)]}, _Context()) == {
        "batchItemFailures": []
    }
    time.sleep(0.3)
    assert len(receiver.requests) == 1
    assert request.headers["webhook-id"] == records[0].pk


def test_odd_events_leave_the_stack_healthy(client: requests.Session, receiver: Receiver) -> None:
    from oms_webhooks.handlers import router

    odd = [
        {"id": "odd-1", "detail-type": "order.exploded", "source": "oms", "detail": {}},
        {"id": "odd-2", "detail-type": "package.created", "source": "oms", "detail": [1, 2]},
        {"id": "odd-3", "detail-type": "package.created", "source": "oms", "detail": "text"},
        "not an event",
    ]
    records = [_sqs_record(json.dumps(e), f"m-{n}") for n, e in enumerate(odd)]
    records.append(_sqs_record("{not json", "m-x"))
    # unroutable events are acknowledged, not retried forever
    assert router.handler({"Records": records}, _Context()) == {"batchItemFailures": []}
    # and a normal event still flows
    subscribe(client, event_type="package.status.shipped", target_url=receiver.url("/"))
    publish_event("package.status.shipped", {"id": 9})
    receiver.wait_for(1)


def test_failed_attempt_is_retried_on_the_countdown_and_logged(
    client: requests.Session, receiver: Receiver
) -> None:
    receiver.respond(Response(status=500, body=b"partner down"))
    subscribe(
        client,
        event_type="package.status.cancelled",
        target_url=receiver.url("/"),
        retry_countdown_config={"choice": "fixed", "kwargs": {"seconds": 1}},
    )
    publish_event("package.status.cancelled", {"id": 10})
    first, second = receiver.wait_for(2, timeout=10)
    assert second.received_at - first.received_at >= 0.9
    assert first.headers["webhook-id"] == second.headers["webhook-id"]
    (logged,) = wait_until(lambda: [d for d in _deliveries(client, delivered="true")])
    assert logged["retry_count"] == 1
    detail = client.get(f"/whisperer/hook_events/{logged['uuid']}/").json()
    assert [a["response_http_status"] for a in detail["attempts"]] == [500, 200]
    assert detail["attempts"][0]["response_content"] == "partner down"
    assert detail["request_payload"]["payload"] == {"id": 10}


def test_unsubscribe_mid_schedule_cancels_the_delivery(
    client: requests.Session, receiver: Receiver
) -> None:
    receiver.respond(*[Response(status=503)] * 5)
    sub = subscribe(
        client,
        event_type="package.status.transitioned",
        target_url=receiver.url("/"),
        retry_countdown_config={"choice": "fixed", "kwargs": {"seconds": 1}},
    )
    publish_event("package.status.transitioned", {"id": 11})
    receiver.wait_for(1)
    assert client.delete(f"/whisperer/hooks/{sub['id']}/").status_code == 204
    (logged,) = wait_until(
        lambda: [d for d in _deliveries(client) if d["status"] == "cancelled"], 10
    )
    seen = len(receiver.requests)
    time.sleep(1.5)
    assert len(receiver.requests) == seen <= 2
    assert logged["webhook"] == sub["id"]


def test_delivery_log_is_tenant_scoped_and_filterable(
    stack: Any, client: requests.Session, receiver: Receiver
) -> None:
    from oms_webhooks.api.tokens import create_token

    sub = subscribe(client, event_type="shipment.status.updated", target_url=receiver.url("/"))
    publish_event("shipment.status.updated", _detail("shipment.status.updated"))
    (logged,) = wait_until(lambda: _deliveries(client, delivered="true"))
    assert _deliveries(client, webhook=sub["id"])[0]["uuid"] == logged["uuid"]
    assert _deliveries(client, event_type="shipment-status-updated")[0]["uuid"] == logged["uuid"]
    assert _deliveries(client, response_http_status=200)[0]["uuid"] == logged["uuid"]
    assert _deliveries(client, delivered="false") == []
    assert (
        _deliveries(client, created_date__gte="2000-01-01T00:00:00Z")[0]["uuid"] == logged["uuid"]
    )
    assert _deliveries(client, created_date__lte="2000-01-01T00:00:00Z") == []
    _, other_token = create_token("intruder-tenant")
    intruder = api(stack, other_token)
    assert intruder.get(f"/whisperer/hook_events/{logged['uuid']}/").status_code == 404
    assert logged["uuid"] not in [d["uuid"] for d in _deliveries(intruder)]
    assert client.get("/whisperer/hook_events/" + "0" * 32 + "/").status_code == 404
    assert client.get("/whisperer/hook_events/nope/").status_code == 404
    assert client.get("/whisperer/hook_events/?cursor=zzz").status_code == 400
