"""Secret rotation with a grace period, ping, and abuse limits (issue: API robustness)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
from typing import Any

import requests
from standardwebhooks.webhooks import Webhook

from oms_webhooks.delivery import pipeline
from oms_webhooks.delivery import store as deliveries
from oms_webhooks.delivery.host_limiter import HOST_BUSY_DELAY_SECONDS, HostLimiter
from oms_webhooks.delivery.outcome import Outcome
from oms_webhooks.delivery.request.sender import SendOptions
from oms_webhooks.routing import events_store
from oms_webhooks.subscriptions.service import get_subscription
from oms_webhooks_local.publisher import publish_event
from tests.functional.helpers import subscribe
from tests.receivers import Receiver, Response

OLD = "whsec_" + base64.b64encode(b"old-secret-0123456789ab").decode()
NEW = "whsec_" + base64.b64encode(b"new-secret-0123456789ab").decode()


def _headers(request: Any) -> dict[str, str]:
    return dict(request.header_items)


def test_rotation_signs_with_both_secrets_during_the_grace_period(
    client: requests.Session, receiver: Receiver
) -> None:
    sub = subscribe(
        client, event_type="package.created", target_url=receiver.url("/"), secret_key=OLD
    )
    rotated = client.post(f"/whisperer/hooks/{sub['id']}/rotate_secret/", json={"secret_key": NEW})
    assert rotated.status_code == 200, rotated.text
    body = rotated.json()
    assert body["secret_key"] is None and NEW not in rotated.text and OLD not in rotated.text
    assert body["has_secret_key"] is True and body["previous_secret_expires_at"]
    publish_event("package.created", {"id": 1})
    (request,) = receiver.wait_for(1)
    signatures = request.headers["webhook-signature"].split(" ")
    assert len(signatures) == 2 and all(s.startswith("v1,") for s in signatures)
    # a partner holding either secret verifies; the whisperer scheme uses the new one
    for secret in (NEW, OLD):
        assert Webhook(secret).verify(request.body, _headers(request))
    expected = hmac.new(NEW.encode(), request.body, hashlib.sha256).hexdigest()
    assert request.headers["X-Whisperer-Signature"] == f"sha256={expected}"


def test_rotation_without_a_body_generates_a_secret_shown_once(
    client: requests.Session, receiver: Receiver, setting: Any
) -> None:
    setting("secret_rotation_grace_seconds", "1")
    sub = subscribe(
        client, event_type="shipment.created", target_url=receiver.url("/"), secret_key=OLD
    )
    rotated = client.post(f"/whisperer/hooks/{sub['id']}/rotate_secret/")
    assert rotated.status_code == 200, rotated.text
    generated = rotated.json()["secret_key"]
    assert generated.startswith("whsec_") and len(base64.b64decode(generated[6:])) == 24
    assert generated not in client.get(f"/whisperer/hooks/{sub['id']}/").text
    time.sleep(1.2)  # past the (shortened) grace period: only the new secret signs
    publish_event("shipment.created", {"id": 2})
    (request,) = receiver.wait_for(1)
    assert len(request.headers["webhook-signature"].split(" ")) == 1
    assert Webhook(generated).verify(request.body, _headers(request))


def test_rotation_of_another_tenants_subscription_is_404(
    client: requests.Session, stack: Any
) -> None:
    from oms_webhooks.api.tokens import create_token
    from tests.functional.helpers import api

    sub = subscribe(client, event_type="shipment.created", target_url="http://127.0.0.1:9/")
    _, other = create_token("rotation-intruder")
    path = f"/whisperer/hooks/{sub['id']}/rotate_secret/"
    assert api(stack, other).post(path).status_code == 404
    bad = client.post(path, json={"secret_key": ""})
    assert bad.status_code == 400 and "secret_key" in bad.json()["errors"]


def test_ping_sends_a_signed_ping_and_reports_the_answer(
    client: requests.Session, receiver: Receiver
) -> None:
    sub = subscribe(
        client,
        event_type="transfer.status.created",
        target_url=receiver.url("/"),
        secret_key=NEW,
        is_active=False,  # a partner can test before enabling
    )
    answer = client.post(f"/whisperer/hooks/{sub['id']}/ping/")
    assert answer.status_code == 200, answer.text
    assert answer.json()["delivered"] is True and answer.json()["response_status"] == 200
    (request,) = receiver.wait_for(1)
    envelope = json.loads(request.body)
    assert envelope["event"]["type"] == "ping" and envelope["payload"] == {}
    assert request.headers["X-Whisperer-Event"] == "ping"
    assert Webhook(NEW).verify(request.body, _headers(request))
    # a ping is not a delivery
    assert client.get("/whisperer/hook_events/").json()["results"] == []
    receiver.respond(Response(status=500, body=b"nope"))
    failed = client.post(f"/whisperer/hooks/{sub['id']}/ping/").json()
    assert failed["delivered"] is False and failed["response_status"] == 500
    assert failed["response_content"] == "nope"
    assert client.post("/whisperer/hooks/" + "0" * 32 + "/ping/").status_code == 404


def test_subscriptions_per_tenant_are_limited(client: requests.Session, setting: Any) -> None:
    setting("max_subscriptions_per_tenant", "3")
    for n in range(3):
        subscribe(client, event_type="package.created", target_url=f"http://127.0.0.1:9/{n}")
    over = client.post(
        "/whisperer/hooks/",
        json={"event_type": "package.created", "target_url": "http://127.0.0.1:9/x"},
    )
    assert over.status_code == 400
    assert over.json()["code"] == "limit_exceeded"


def test_concurrent_deliveries_per_host_are_limited_without_using_retries(
    stack: Any, tenant: Any
) -> None:
    # GIVEN three deliveries to one host and a limit of one at a time
    with Receiver(default=Response(status=200, delay=0.5)) as receiver:
        from tests.functional.helpers import api

        client = api(stack, tenant.token)
        uids = []
        for n in range(3):
            sub = subscribe(
                client, event_type="stock_location.updated", target_url=receiver.url(f"/{n}")
            )
            record = get_subscription(tenant.name, sub["id"])
            event_id = f"limit-{time.time_ns()}-{n}"
            events_store.get_store().put_payload(
                event_id, "stock_location.updated", "2026-11-29T10:00:00Z", "{}"
            )
            delivery, _ = deliveries.create_delivery(
                record, event_id=event_id, event_type="stock_location.updated", event_time="t"
            )
            uids.append(delivery.pk)
        limiter = HostLimiter(1)
        options = SendOptions(allow_private=True)
        outcomes: list[Outcome] = []
        # WHEN they are dispatched at once (on the slow lane: on the main lane
        # the second and third would move there, the target being unknown yet)
        threads = [
            threading.Thread(
                target=lambda u=u: outcomes.append(
                    pipeline.dispatch(u, options, limiter, lane="slow")
                )
            )
            for u in uids
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join(10)
        # THEN one attempt is made; the others come back a second later, no retry used
        kinds = sorted(o.kind for o in outcomes)
        assert kinds == ["delivered", "not_due", "not_due"], kinds
        assert all(o.delay == HOST_BUSY_DELAY_SECONDS for o in outcomes if o.kind == "not_due")
        assert len(receiver.requests) == 1
        waiting = [o.delivery_uuid for o in outcomes if o.kind == "not_due"]
        for uid in waiting:
            record = deliveries.get_store().get(uid)
            assert record is not None and int(record.attempt_count) == 0
