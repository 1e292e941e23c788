"""Tokens: the ``Token`` scheme (another one is a 401 that names it), and scopes: a partner
receives and touches only the event types the operator meant it to."""

from __future__ import annotations

import uuid
from typing import Any

from click.testing import CliRunner

from oms_webhooks.api.tokens import create_token
from oms_webhooks_local.cli import main
from oms_webhooks_local.publisher import publish_event
from oms_webhooks_local.stack import LocalStack
from tests.functional.helpers import api, subscribe, wait_until


def _scoped(stack: Any) -> Any:
    _, token = create_token(
        f"scoped-{uuid.uuid4().hex[:8]}", event_types=["package-created", "shipment.created"]
    )
    return api(stack, token)


def test_registry_shows_what_the_token_may_subscribe_to(stack: Any) -> None:
    response = _scoped(stack).get("/whisperer/hooks/registry/")
    assert response.status_code == 200
    assert response.json()["event_types"] == ["package.created", "shipment.created"]


def test_subscribing_outside_the_scope_is_403_naming_the_type(stack: Any) -> None:
    client = _scoped(stack)
    ok = client.post(
        "/whisperer/hooks/",
        json={"event_type": "package.created", "target_url": "http://127.0.0.1:9/a"},
    )
    assert ok.status_code == 201, ok.text
    refused = client.post(
        "/whisperer/hooks/",
        json={"event_type": "stock_location.created", "target_url": "http://127.0.0.1:9/b"},
    )
    assert refused.status_code == 403
    body = refused.json()
    assert body["code"] == "forbidden"
    assert "stock_location.created" in body["errors"]["event_type"][0]
    # nor can an allowed subscription be moved outside the scope
    moved = client.patch(
        f"/whisperer/hooks/{ok.json()['id']}/", json={"event_type": "transfer.status.created"}
    )
    assert moved.status_code == 403
    assert (
        client.get(f"/whisperer/hooks/{ok.json()['id']}/").json()["event_type"] == "package.created"
    )


def test_an_unscoped_token_sees_the_whole_catalogue(stack: Any, tenant: Any) -> None:
    assert (
        len(api(stack, tenant.token).get("/whisperer/hooks/registry/").json()["event_types"]) == 18
    )


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


def test_a_bearer_token_gets_a_401_that_names_the_token_scheme(
    stack: LocalStack, tenant: Any
) -> None:
    response = api(stack).get(
        "/whisperer/hooks/", headers={"Authorization": f"Bearer {tenant.token}"}
    )
    assert response.status_code == 401
    assert "Authorization: Token <token>" in response.json()["detail"]
