"""Regression tests for a second attack run on the local stack (each find stays a test)."""

from __future__ import annotations

import contextlib
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from click.testing import CliRunner

from oms_webhooks import deliveries, dispatch
from oms_webhooks.cli import main
from oms_webhooks.errors import ServiceError
from oms_webhooks.publisher import publish_event
from oms_webhooks.schemas import SubscriptionIn, SubscriptionPatch
from oms_webhooks.sender import SendOptions
from oms_webhooks.settings import get_settings
from oms_webhooks.subscriptions import (
    create_subscription,
    delete_subscription,
    get_subscription,
    list_subscriptions,
    update_subscription,
)
from oms_webhooks.tokens import create_token
from tests.functional.helpers import api, subscribe, wait_until


def test_a_scoped_token_cannot_touch_subscriptions_outside_its_scope(
    stack: Any, receiver: Any
) -> None:
    tenant = f"scope-{uuid.uuid4().hex[:8]}"
    _, full = create_token(tenant)
    _, scoped = create_token(tenant, event_types=["package.created"])
    outside = subscribe(
        api(stack, full), event_type="shipment.created", target_url=receiver.url("/s")
    )
    inside = subscribe(
        api(stack, full), event_type="package.created", target_url=receiver.url("/p")
    )
    client = api(stack, scoped)
    listed = [s["id"] for s in client.get("/whisperer/hooks/").json()["results"]]
    assert listed == [inside["id"]]
    path = f"/whisperer/hooks/{outside['id']}/"
    assert client.get(path).status_code == 404
    assert client.patch(path, json={"target_url": receiver.url("/hijack")}).status_code == 404
    assert client.post(path + "rotate_secret/").status_code == 404
    assert client.post(path + "ping/").status_code == 404
    assert client.delete(path).status_code == 404
    assert receiver.requests == []
    # nor its deliveries
    publish_event("shipment.created", {"id": 1})
    receiver.wait_for(1)
    own = wait_until(lambda: api(stack, full).get("/whisperer/hook_events/").json()["results"])
    assert client.get("/whisperer/hook_events/").json()["results"] == []
    assert client.get(f"/whisperer/hook_events/{own[0]['uuid']}/").status_code == 404
    resend = client.post(f"/whisperer/hook_events/{own[0]['uuid']}/retry/", json={"force": True})
    assert resend.status_code == 404


def test_delete_racing_a_target_change_never_leaves_a_stale_uniqueness_guard(stack: Any) -> None:
    tenant = f"race-{uuid.uuid4().hex[:8]}"
    for n in range(8):
        body = SubscriptionIn(event_type="package.created", target_url=f"http://127.0.0.1:9/o{n}")
        created = create_subscription(tenant, body)
        patch = SubscriptionPatch(target_url=f"http://127.0.0.1:9/n{n}")
        barrier = threading.Barrier(2)
        actions = [
            lambda sid=created.id: delete_subscription(tenant, sid),
            lambda sid=created.id, p=patch: update_subscription(tenant, sid, p, partial=True),
        ]

        def race(action: Any, gate: threading.Barrier = barrier) -> None:
            gate.wait()
            with contextlib.suppress(ServiceError):
                action()

        with ThreadPoolExecutor(2) as pool:
            list(pool.map(race, actions))
        remaining = list_subscriptions(tenant).items
        for item in remaining:  # whatever won, the state must be consistent
            delete_subscription(tenant, item.id)
        # both URLs can be subscribed again: no guard was left behind
        for url in (f"http://127.0.0.1:9/o{n}", f"http://127.0.0.1:9/n{n}"):
            again = create_subscription(
                tenant, SubscriptionIn(event_type="package.created", target_url=url)
            )
            delete_subscription(tenant, again.id)


@pytest.mark.parametrize("round_", range(3))
def test_the_per_tenant_limit_holds_under_concurrent_creates(
    stack: Any, setting: Any, round_: int
) -> None:
    # DynamoDB runs each transaction atomically; moto did not across its server's
    # threads (6 == 5 on a loaded machine): local.moto_dynamodb serialises its requests.
    setting("max_subscriptions_per_tenant", "5")
    tenant = f"limit-{uuid.uuid4().hex[:8]}"

    def create(n: int) -> bool:
        body = SubscriptionIn(event_type="package.created", target_url=f"http://127.0.0.1:9/{n}")
        try:
            create_subscription(tenant, body)
        except ServiceError:
            return False
        return True

    with ThreadPoolExecutor(8) as pool:
        created = sum(pool.map(create, range(16)))
    assert created == 5
    assert len(list_subscriptions(tenant).items) == 5


def test_concurrent_creates_over_http_all_answer_201(stack: Any, tenant: Any) -> None:
    client = api(stack, tenant.token)

    def create(n: int) -> int:
        response = client.post(
            "/whisperer/hooks/",
            json={"event_type": "package.created", "target_url": f"http://127.0.0.1:9/c{n}"},
        )
        return response.status_code

    with ThreadPoolExecutor(6) as pool:
        codes = list(pool.map(create, range(12)))
    assert codes == [201] * 12


def test_an_empty_event_types_scope_is_refused(stack: Any) -> None:
    for value in ("", " ", ","):
        result = CliRunner().invoke(
            main,
            [
                "tokens",
                "create",
                "--tenant",
                "empty-scope",
                "--event-types",
                value,
                "--endpoint-url",
                stack.aws_endpoint_url,
            ],
        )
        assert result.exit_code == 2, result.output
        assert "at least one event type" in result.output


def test_rotating_to_the_current_secret_is_refused_and_the_grace_is_visible(
    client: Any, receiver: Any
) -> None:
    sub = subscribe(
        client, event_type="package.created", target_url=receiver.url("/"), secret_key="first"
    )
    path = f"/whisperer/hooks/{sub['id']}/"
    assert client.get(path).json()["previous_secret_expires_at"] is None
    assert client.post(path + "rotate_secret/", json={"secret_key": "second"}).status_code == 200
    assert client.get(path).json()["previous_secret_expires_at"] is not None
    same = client.post(path + "rotate_secret/", json={"secret_key": "second"})
    assert same.status_code == 400 and "secret_key" in same.json()["errors"]


def test_each_attempt_keeps_the_delivery_a_full_retention(
    stack: Any, tenant: Any, receiver: Any
) -> None:
    client = api(stack, tenant.token)
    sub = subscribe(client, event_type="package.created", target_url=receiver.url("/"))
    record = get_subscription(tenant.name, sub["id"])
    event_id = f"ttl-{time.time_ns()}"
    deliveries.store_payload(event_id, "package.created", "t", "{}")
    delivery, _ = deliveries.create_delivery(
        record, event_id=event_id, event_type="package.created", event_time="t"
    )
    retention = get_settings().delivery_retention_seconds
    payload = deliveries.load_payload(event_id)
    assert payload is not None
    assert payload.expires_at.timestamp() == pytest.approx(time.time() + 2 * retention, abs=60)
    assert dispatch.dispatch(delivery.pk, SendOptions(allow_private=True)).kind == "delivered"
    after = deliveries.get_delivery(delivery.pk)
    assert after is not None and after.expires_at.timestamp() == pytest.approx(
        time.time() + retention, abs=60
    )


def test_additional_headers_are_limited_in_total_size(client: Any) -> None:
    headers = {f"X-H{n}": "v" * 4000 for n in range(2)}
    response = client.post(
        "/whisperer/hooks/",
        json={
            "event_type": "package.created",
            "target_url": "http://127.0.0.1:9/",
            "additional_headers": headers,
        },
    )
    assert response.status_code == 400
    assert "additional_headers" in response.json()["errors"]


def test_an_unencoded_plus_in_a_time_filter_gets_a_hint(client: Any) -> None:
    response = client.get("/whisperer/hook_events/?created_date__gte=2026-11-29T10:00:00+03:00")
    assert response.status_code == 400
    assert "%2B" in response.text
    encoded = client.get("/whisperer/hook_events/?created_date__gte=2026-11-29T10:00:00%2B03:00")
    assert encoded.status_code == 200


@pytest.mark.parametrize(
    ("path", "param"),
    [("/whisperer/hook_events/", "status"), ("/whisperer/hooks/", "foo")],
)
def test_unknown_query_parameters_are_400(client: Any, path: str, param: str) -> None:
    response = client.get(f"{path}?{param}=delivered")
    assert response.status_code == 400
    assert param in response.json()["errors"]
