"""A page of subscriptions reads its circuit breakers once (subscriptions/views.py, DESIGN §9).

Against the local stack's DynamoDB (moto over HTTP), with the breaker cache
off (``OMS_WEBHOOKS_BREAKER_CACHE_SECONDS=0``) so that every read is real. The
reads are counted by botocore's own ``before-call`` event on the client that
PynamoDB uses: real calls, not a stand-in.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
import requests

from oms_webhooks.delivery.request.sender import AttemptResult
from oms_webhooks.delivery.retry import breaker
from oms_webhooks.storage.models import TargetStateModel
from oms_webhooks.storage.specs import bind_tables
from oms_webhooks.subscriptions import views
from tests.functional.helpers import Tenant, fresh_settings, subscribe, subscription_item

REFUSED = AttemptResult(
    at=datetime.now(UTC), status_code=None, error=None, response_time_ms=5, failure="connection"
)


@pytest.fixture(autouse=True)
def _no_cache(monkeypatch: pytest.MonkeyPatch, stack: Any) -> Iterator[None]:
    with fresh_settings(monkeypatch, BREAKER_CACHE_SECONDS="0", BREAKER_THRESHOLD="3"):
        yield


def test_a_page_reads_every_circuit_in_one_call_and_keeps_each_to_its_subscription() -> None:
    bind_tables()
    tenant = f"tenant-{uuid.uuid4().hex[:8]}"
    urls = [f"https://{uuid.uuid4().hex[:12]}.example/hook" for _ in range(5)]
    items = [subscription_item(tenant, target_url=url, max_retries=1) for url in urls]
    # GIVEN the third target's origin has its circuit open (three refused connections)
    dead = breaker.keys_for(urls[2], tenant)
    for _ in range(3):
        breaker.report(dead, REFUSED)
    calls: list[str] = []
    # The botocore client of the breaker items' table (health's table has its own).
    client = TargetStateModel._get_connection().connection.client
    hook = lambda model, **_: calls.append(model.name)  # noqa: E731
    client.meta.events.register("before-call.dynamodb.BatchGetItem", hook)
    try:
        # WHEN a page of the five is viewed
        page = views.to_resources(items)
    finally:
        client.meta.events.unregister("before-call.dynamodb.BatchGetItem", hook)
    # THEN each subscription shows its own target's circuit
    assert [view.circuit.state for view in page] == ["closed", "closed", "open", "closed", "closed"]
    # AND the breaker items of all five were read in one BatchGetItem
    assert calls == ["BatchGetItem"]


def test_the_list_endpoint_shows_each_subscription_its_own_circuit(
    client: requests.Session, tenant: Tenant
) -> None:
    # GIVEN three subscriptions to three origins, the second one's circuit open
    octets = uuid.uuid4().bytes
    urls = [f"http://127.{octets[0]}.{octets[1]}.{n}:9/hook" for n in (1, 2, 3)]
    made = [subscribe(client, event_type="package.created", target_url=url) for url in urls]
    for _ in range(3):
        breaker.report(breaker.keys_for(urls[1], tenant.name), REFUSED)
    # WHEN the tenant lists its subscriptions
    listed = client.get("/whisperer/hooks/", params={"limit": 10})
    # THEN each one shows its own target's circuit, the open one with its end
    assert listed.status_code == 200, listed.text
    circuits = {item["id"]: item["circuit"] for item in listed.json()["results"]}
    assert [circuits[sub["id"]]["state"] for sub in made] == ["closed", "open", "closed"]
    assert circuits[made[1]["id"]]["until"] is not None
    assert circuits[made[0]["id"]]["until"] is None
