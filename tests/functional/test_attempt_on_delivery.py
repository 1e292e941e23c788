"""The latest attempt lives on the delivery item; earlier ones on their own items (cost, README).

On the local stack with a real receiver on 127.0.0.1: a delivery answered at
its first attempt writes no attempt item, and a delivery with three attempts
writes two (each moved out when the next one is recorded), while the
delivery API lists every attempt, oldest first, as before.
"""

from __future__ import annotations

from typing import Any

import requests

from oms_webhooks.storage.models import AttemptModel, DeliveryModel
from oms_webhooks_local.publisher import publish_event
from tests.functional.helpers import FAST, subscribe, wait_until
from tests.receivers import Receiver, Response


def _stored_attempt_items(uid: str) -> list[str]:
    return [a.sk for a in AttemptModel.query(uid, AttemptModel.sk.startswith("attempt#"))]


def _delivered(client: requests.Session, event_type: str) -> dict[str, Any]:
    def find() -> list[dict[str, Any]]:
        results = client.get("/whisperer/hook_events/", params={"event_type": event_type})
        return [d for d in results.json()["results"] if d["delivered"]]

    (found,) = wait_until(find, timeout=20)
    return found


def test_first_attempt_writes_no_attempt_item(client: requests.Session, receiver: Receiver) -> None:
    # GIVEN a partner that answers at once
    receiver.respond(Response(status=204))
    subscribe(client, event_type="stock_location.created", target_url=receiver.url("/"))
    # WHEN one event is delivered
    publish_event("stock_location.created", {"id": 1})
    found = _delivered(client, "stock_location.created")
    # THEN the attempt is on the delivery item alone ...
    assert _stored_attempt_items(found["uuid"]) == []
    item = DeliveryModel.get(found["uuid"], "delivery", consistent_read=True)
    assert item.last_attempt == 1 and item.attempt_at is not None
    # ... and the detail view lists it
    detail = client.get(f"/whisperer/hook_events/{found['uuid']}/").json()
    assert [a["response_http_status"] for a in detail["attempts"]] == [204]


def test_every_attempt_is_listed_once_in_order(
    client: requests.Session, receiver: Receiver
) -> None:
    # GIVEN a partner that fails twice, then answers
    receiver.respond(
        Response(status=500, body=b"first"), Response(status=503, body=b"second"), Response()
    )
    subscribe(
        client,
        event_type="stock_location.updated",
        target_url=receiver.url("/"),
        retry_countdown_config=FAST,
        max_retries=3,
    )
    # WHEN the event is delivered at its third attempt
    publish_event("stock_location.updated", {"id": 2})
    found = _delivered(client, "stock_location.updated")
    # THEN the two earlier attempts have their own items, the last is on the delivery
    assert _stored_attempt_items(found["uuid"]) == ["attempt#0001", "attempt#0002"]
    detail = client.get(f"/whisperer/hook_events/{found['uuid']}/").json()
    attempts = detail["attempts"]
    assert [a["response_http_status"] for a in attempts] == [500, 503, 200]
    assert [a["response_content"] for a in attempts[:2]] == ["first", "second"]
    assert attempts[0]["at"] < attempts[1]["at"] < attempts[2]["at"]
    assert detail["retry_count"] == 2 and detail["response_http_status"] == 200
