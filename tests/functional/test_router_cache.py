"""The router's per-event-type subscription cache (DESIGN §8), off on the local stack."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from oms_webhooks.routing import fanout
from oms_webhooks.settings import get_settings
from tests.functional.helpers import subscribe


@pytest.fixture
def cache_seconds(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("OMS_WEBHOOKS_ROUTER_CACHE_SECONDS", "60")
    get_settings.cache_clear()
    fanout._cache.clear()
    yield
    monkeypatch.undo()
    get_settings.cache_clear()
    fanout._cache.clear()


def _ids(event_type: str) -> set[str]:
    return {s.id for s in fanout.matching_subscriptions(event_type)}


def test_the_local_stack_reads_the_index_every_time(client: Any) -> None:
    assert get_settings().router_cache_seconds == 0
    first = subscribe(client, event_type="shipment.cancelled", target_url="http://127.0.0.1:9/a")
    assert first["id"] in _ids("shipment.cancelled")
    second = subscribe(client, event_type="shipment.cancelled", target_url="http://127.0.0.1:9/b")
    assert second["id"] in _ids("shipment.cancelled")


@pytest.mark.usefixtures("cache_seconds")
def test_with_a_cache_a_new_subscription_waits_for_the_window(client: Any) -> None:
    first = subscribe(
        client, event_type="transfer.status.cancelled", target_url="http://127.0.0.1:9/a"
    )
    assert first["id"] in _ids("transfer.status.cancelled")
    second = subscribe(
        client, event_type="transfer.status.cancelled", target_url="http://127.0.0.1:9/b"
    )
    assert second["id"] not in _ids("transfer.status.cancelled")  # still cached
    fanout._cache.clear()  # the window ends
    assert second["id"] in _ids("transfer.status.cancelled")
