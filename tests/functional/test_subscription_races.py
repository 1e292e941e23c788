"""Subscriptions under concurrent writes: a delete racing a target change, the per-tenant limit
under concurrent creates, concurrent creates over HTTP (found by the second attack run)."""

from __future__ import annotations

import contextlib
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from oms_webhooks.api.schemas import SubscriptionIn, SubscriptionPatch
from oms_webhooks.errors import ServiceError
from oms_webhooks.subscriptions.service import (
    create_subscription,
    delete_subscription,
    list_subscriptions,
    update_subscription,
)
from tests.functional.helpers import api


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
