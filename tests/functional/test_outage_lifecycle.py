"""Partner outage lifecycle on the local stack: health, auto-disable, cancellation (DESIGN §10).

Real receivers on 127.0.0.1; the auto-disable threshold is a setting, so the
tests use a couple of seconds instead of five days.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import requests

from oms_webhooks_local.publisher import publish_event
from tests.functional.helpers import (
    FAST,
    Catcher,
    deliveries_of,
    shown_subscription,
    subscribe,
    subscribe_to_a_dead_partner,
    wait_until,
)
from tests.raw_endpoints import RawEndpoint, silent
from tests.receivers import Receiver, Response


def _disabled(client: requests.Session, subscription_id: str) -> dict[str, Any] | None:
    """The subscription as shown, once it is inactive; None while it is active."""
    shown = shown_subscription(client, subscription_id)
    return shown if shown["is_active"] is False else None


def test_a_new_subscription_is_healthy(client: requests.Session, receiver: Receiver) -> None:
    sub = subscribe(client, event_type="package.created", target_url=receiver.url("/"))
    assert sub["failing_since"] is None
    assert sub["disabled_reason"] is None and sub["disabled_at"] is None


def test_failing_since_is_set_by_a_failure_and_cleared_by_a_success(
    client: requests.Session, receiver: Receiver
) -> None:
    # GIVEN an endpoint that fails once, then answers 200
    receiver.respond(Response(status=500))
    sub = subscribe(
        client,
        event_type="package.status.packed",
        target_url=receiver.url("/"),
        retry_countdown_config={"choice": "fixed", "kwargs": {"seconds": 2}},
    )
    publish_event("package.status.packed", {"id": 1})
    receiver.wait_for(1, timeout=10)
    # THEN failing_since is the time of that first failure
    failing = wait_until(lambda: shown_subscription(client, sub["id"])["failing_since"])
    assert failing is not None
    assert shown_subscription(client, sub["id"])["is_active"] is True
    # WHEN the retry succeeds, THEN failing_since is cleared
    receiver.wait_for(2, timeout=10)
    wait_until(lambda: shown_subscription(client, sub["id"])["failing_since"] is None)


def test_a_dead_endpoint_is_disabled_after_the_threshold(
    client: requests.Session, receiver: Receiver, setting: Callable[[str, str], None]
) -> None:
    # GIVEN a short auto-disable threshold and an endpoint that always fails
    sub = subscribe_to_a_dead_partner(
        client,
        receiver,
        setting,
        event_type="shipment.created",
        target_url=receiver.url("/"),
        payload={"id": 2},
    )
    # THEN after ~2 s of unbroken failure the subscription is inactive with a reason
    disabled = wait_until(lambda: _disabled(client, sub["id"]), timeout=20)
    assert disabled["disabled_reason"].startswith("failing since ")
    assert disabled["failing_since"] is not None and disabled["disabled_at"] is not None
    # AND its pending delivery is cancelled, no attempt follows
    wait_until(lambda: [d for d in deliveries_of(client, sub["id"]) if d["status"] == "cancelled"])
    count = len(receiver.requests)
    time.sleep(1.5)
    assert len(receiver.requests) == count


def test_410_disables_at_once_with_its_reason(client: requests.Session, receiver: Receiver) -> None:
    receiver.respond(Response(status=410))
    sub = subscribe(
        client,
        event_type="shipment.cancelled",
        target_url=receiver.url("/"),
        retry_countdown_config=FAST,
    )
    publish_event("shipment.cancelled", {"id": 3})
    disabled = wait_until(
        lambda: (s := shown_subscription(client, sub["id"]))["is_active"] is False and s
    )
    assert disabled["disabled_reason"] == "410 Gone"
    assert disabled["disabled_at"] is not None


def test_reactivation_does_not_resume_old_pending_deliveries(
    client: requests.Session, receiver: Receiver
) -> None:
    # GIVEN a delivery pending on a 3 s countdown after a failed first attempt
    receiver.respond(Response(status=500))
    sub = subscribe(
        client,
        event_type="package.status.shipped",
        target_url=receiver.url("/"),
        retry_countdown_config={"choice": "fixed", "kwargs": {"seconds": 3}},
    )
    publish_event("package.status.shipped", {"id": 4})
    receiver.wait_for(1, timeout=10)
    # WHEN the subscription is deactivated and re-activated before the countdown ends
    path = f"/whisperer/hooks/{sub['id']}/"
    assert client.patch(path, json={"is_active": False}).status_code == 200
    off = shown_subscription(client, sub["id"])
    assert off["disabled_at"] is not None and off["disabled_reason"] is None
    back = client.patch(path, json={"is_active": True})
    assert back.status_code == 200, back.text
    assert back.json()["failing_since"] is None and back.json()["disabled_at"] is None
    # THEN the old delivery is cancelled, never attempted again
    wait_until(
        lambda: [d for d in deliveries_of(client, sub["id"]) if d["status"] == "cancelled"],
        timeout=15,
    )
    assert len(receiver.requests) == 1
    # AND a new event is delivered as usual
    publish_event("package.status.shipped", {"id": 5})
    second = receiver.wait_for(2, timeout=10)[1]
    assert json.loads(second.body)["payload"] == {"id": 5}


def test_a_disabled_subscriptions_delivery_can_still_be_resent(
    client: requests.Session, receiver: Receiver
) -> None:
    # GIVEN a subscription disabled by a 410
    receiver.respond(Response(status=410), Response(status=200))
    sub = subscribe(client, event_type="stock_location.created", target_url=receiver.url("/"))
    publish_event("stock_location.created", {"id": 6})
    wait_until(lambda: _disabled(client, sub["id"]))
    (delivery,) = deliveries_of(client, sub["id"])
    # WHEN an operator resends its delivery
    answer = client.post(f"/whisperer/hook_events/{delivery['uuid']}/retry/", json={})
    # THEN it is sent (the partner answers 200 now)
    assert answer.status_code == 200, answer.text
    assert len(receiver.wait_for(2, timeout=10)) == 2


def test_two_dispatchers_disabling_at_once_disable_once(
    client: requests.Session, receiver: Receiver, tenant: Any
) -> None:
    from oms_webhooks.storage.models import SubscriptionModel
    from oms_webhooks.subscriptions import health

    sub = subscribe(client, event_type="transfer.status.created", target_url=receiver.url("/"))
    # GIVEN two copies of the subscription read before either disabled it
    first = SubscriptionModel.get(tenant.name, sub["id"], consistent_read=True)
    second = SubscriptionModel.get(tenant.name, sub["id"], consistent_read=True)
    # WHEN both try to disable it, THEN only one does (and says so)
    assert health.disable(first, "410 Gone") is not None
    assert health.disable(second, "failing since 2026-01-01T00:00:00Z") is None
    shown = shown_subscription(client, sub["id"])
    assert shown["is_active"] is False and shown["disabled_reason"] == "410 Gone"


def test_a_dead_endpoint_is_disabled_also_when_its_breaker_holds_it(
    client: requests.Session,
    tenant: Any,
    catcher: Catcher,
    setting: Callable[[str, str], None],
) -> None:
    from oms_webhooks.delivery.retry import breaker
    from oms_webhooks.storage.models import TargetStateModel

    # GIVEN a partner whose endpoint accepts connections and never answers, short
    # settings (read timeout 0.5 s, circuit opens after 2 timeouts for a minute,
    # auto-disable after 4 s of unbroken failure) and a subscription retrying every 1 s
    setting("read_timeout_seconds", "0.5")
    setting("breaker_threshold", "2")
    setting("breaker_cooldown_seconds", "60")
    setting("auto_disable_after_seconds", "4")
    with RawEndpoint(silent) as endpoint:
        sub = subscribe(
            client,
            event_type="transfer.status.transitioned",
            target_url=endpoint.url("/dead?k=v"),
            retry_countdown_config=FAST,
            max_retries=20,
        )
        keys = breaker.keys_for(endpoint.url("/dead"), tenant.name)

        def circuit_open() -> bool:
            try:
                state = TargetStateModel.get(keys.timeout, "state", consistent_read=True)
            except TargetStateModel.DoesNotExist:
                return False
            return state.state == "open"

        # WHEN an event's delivery times out twice, the circuit opens
        publish_event("transfer.status.transitioned", {"id": 9})
        wait_until(circuit_open, timeout=30)
        attempts = endpoint.accepted
        assert attempts == 2
        # AND the OMS keeps publishing: the circuit holds every new delivery (no attempt)
        sent = 1

        def disabled() -> dict[str, Any] | None:
            nonlocal sent
            shown = shown_subscription(client, sub["id"])
            if shown["is_active"] is False:
                return shown
            publish_event("transfer.status.transitioned", {"id": 9 + sent})
            sent += 1
            time.sleep(1.0)
            return None

        # THEN the holds count as failing: the subscription is disabled with its reason
        shown: dict[str, Any] = wait_until(disabled, timeout=60)
        # (the reason gives the time to the second, the resource to the microsecond)
        assert shown["disabled_reason"] == f"failing since {shown['failing_since'][:19]}Z"
        assert shown["disabled_at"] is not None
        # AND no attempt was made after the circuit opened: the holds disabled it
        assert endpoint.accepted == attempts
        logged = [
            len(client.get(f"/whisperer/hook_events/{d['uuid']}/").json()["attempts"])
            for d in deliveries_of(client, sub["id"])
        ]
        # (on a loaded machine the first delivery's held retry may disable it before a
        # second event is published: the holds did it either way, no attempt was made)
        assert sum(logged) == attempts, logged
        # AND webhook.subscription.disabled is on the bus, target without its query
        event = catcher.wait_for(
            "webhook.subscription.disabled", lambda d: d["subscription"] == sub["id"], timeout=30
        )
        assert event["detail"]["reason"] == shown["disabled_reason"]
        assert event["detail"]["target_url"] == endpoint.url("/dead")
