"""Token scopes: a partner receives only the event types the operator meant it to."""

from __future__ import annotations

import uuid
from typing import Any

from oms_webhooks.tokens import create_token
from tests.functional.helpers import api


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
