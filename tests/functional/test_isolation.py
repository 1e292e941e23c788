"""One partner's trouble stays its own (DESIGN §9), on the local stack with raw-socket partners.

Timeouts are short settings (connect 0.5 s, read 3 s; an attempt marks its
target slow after 0.3 s); the assertions are about what happened (which
lane, how many connections, what was logged), with generous waits.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests

from oms_webhooks.delivery import pipeline
from oms_webhooks.delivery import store as deliveries
from oms_webhooks.delivery.outcome import Outcome
from oms_webhooks.delivery.request.sender import AttemptResult, SendOptions
from oms_webhooks.delivery.retry import breaker
from oms_webhooks.routing import events_store
from oms_webhooks.settings import get_settings
from oms_webhooks.storage.models import DeliveryModel
from oms_webhooks.subscriptions.service import get_subscription
from oms_webhooks_local.publisher import publish_event
from tests.functional.helpers import fresh_settings, subscribe, wait_until
from tests.raw_endpoints import (
    RawEndpoint,
    Script,
    dripping,
    endless_interim,
    interim,
    silent,
    slow,
)
from tests.receivers import Receiver

LATER = {"choice": "fixed", "kwargs": {"seconds": 3600}}


@pytest.fixture(autouse=True)
def _short_timeouts(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    with fresh_settings(
        monkeypatch,
        CONNECT_TIMEOUT_SECONDS="0.5",
        READ_TIMEOUT_SECONDS="3.0",
        SLOW_ATTEMPT_SECONDS="0.3",
    ):
        yield


def _attempts(client: requests.Session, subscription_id: str) -> list[dict[str, Any]]:
    """Every attempt in the delivery log of one subscription."""
    found = []
    for delivery in client.get("/whisperer/hook_events/").json()["results"]:
        if delivery["webhook"] == subscription_id:
            detail = client.get(f"/whisperer/hook_events/{delivery['uuid']}/").json()
            found += detail["attempts"]
    return found


@pytest.mark.parametrize(
    ("script", "delivered"),
    [
        pytest.param(silent, False, id="silent"),
        pytest.param(dripping(0.1), False, id="dripping"),
        pytest.param(slow(0.6), True, id="slow-within-timeout"),
        pytest.param(interim(b"102 Processing", b"103 Early Hints"), True, id="interim-1xx"),
        pytest.param(endless_interim(0.5), False, id="endless-1xx"),
    ],
)
def test_a_misbehaving_partner_costs_only_its_own_deliveries(
    client: requests.Session, receiver: Receiver, script: Script, delivered: bool
) -> None:
    # GIVEN a healthy and a misbehaving subscription of the same event type
    with RawEndpoint(script) as partner:
        healthy = subscribe(client, event_type="shipment.cancelled", target_url=receiver.url("/"))
        bad = subscribe(
            client,
            event_type="shipment.cancelled",
            target_url=partner.url("/hook"),
            retry_countdown_config=LATER,
        )
        # WHEN a few events are published
        for n in range(3):
            publish_event("shipment.cancelled", {"n": n})
        # THEN every healthy delivery arrives
        receiver.wait_for(3, timeout=20)

        # AND the partner's deliveries are attempted once each, and logged as such
        def logged() -> list[dict[str, Any]]:
            attempts = _attempts(client, bad["id"])
            return attempts if len(attempts) >= 3 else []

        attempts = wait_until(logged, timeout=30)
        assert len(attempts) == 3 and partner.accepted == 3
        statuses = {a["response_http_status"] for a in attempts}
        assert statuses == ({200} if delivered else {None}), attempts
    assert healthy["id"] != bad["id"]


def test_an_attempt_marks_its_target_slow_while_it_runs(
    client: requests.Session, tenant: Any
) -> None:
    # GIVEN a delivery to a partner that never answers
    with RawEndpoint(silent) as partner:
        sub = subscribe(client, event_type="package.created", target_url=partner.url("/"))
        record = get_subscription(tenant.name, sub["id"])
        event_id = f"slow-{time.time_ns()}"
        events_store.get_store().put_payload(
            event_id, "package.created", "2026-11-29T10:00:00Z", "{}"
        )
        delivery, _ = deliveries.create_delivery(
            record, event_id=event_id, event_type="package.created", event_time="t"
        )
        keys = breaker.keys_for(partner.url("/"), tenant.name)
        options = SendOptions.from_settings(get_settings())
        # WHEN its attempt runs on the main lane
        outcomes: list[Outcome] = []
        thread = threading.Thread(
            target=lambda: outcomes.append(pipeline.dispatch(delivery.pk, options))
        )
        thread.start()
        # THEN the target is marked slow before the attempt ends
        wait_until(lambda: breaker.is_slow(keys), timeout=5)
        still_running = thread.is_alive()
        thread.join(10)
        assert still_running and outcomes[0].kind == "retry"
        # AND its next delivery on the main lane moves to the slow lane, unattempted
        events_store.get_store().put_payload(
            event_id + "b", "package.created", "2026-11-29T10:00:00Z", "{}"
        )
        other, _ = deliveries.create_delivery(
            record, event_id=event_id + "b", event_type="package.created", event_time="t"
        )
        assert pipeline.dispatch(other.pk, options).kind == "divert"
        assert pipeline.dispatch(other.pk, options, lane="slow").kind == "retry"
        assert partner.accepted == 2


def test_an_open_circuit_holds_deliveries_without_attempts(
    client: requests.Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OMS_WEBHOOKS_BREAKER_THRESHOLD", "2")
    get_settings.cache_clear()
    # GIVEN a target that refuses connections (a closed port), retried every second
    with RawEndpoint(silent) as closed:
        url = closed.url("/")
    sub = subscribe(
        client,
        event_type="package.status.packed",
        target_url=url,
        max_retries=10,
        retry_countdown_config={"choice": "fixed", "kwargs": {"seconds": 1}},
    )
    publish_event("package.status.packed", {"id": 1})
    # WHEN two attempts have failed (the threshold)
    uid = wait_until(
        lambda: next(
            (
                d["uuid"]
                for d in client.get("/whisperer/hook_events/").json()["results"]
                if d["webhook"] == sub["id"] and d["retry_count"] >= 1
            ),
            None,
        ),
        timeout=15,
    )
    # THEN the subscription shows its circuit open, and no more attempts are made
    view = wait_until(
        lambda: (
            (c := client.get(f"/whisperer/hooks/{sub['id']}/").json()["circuit"])["state"] == "open"
            and c
        ),
        timeout=10,
    )
    assert view["until"] is not None
    time.sleep(3.0)
    detail = client.get(f"/whisperer/hook_events/{uid}/").json()
    assert detail["status"] == "pending" and len(detail["attempts"]) == 2
    assert detail["retry_count"] == 1
    assert all(a["error"] == "connection refused" for a in detail["attempts"])
    # AND the held delivery says why, in its detail and in the delivery log
    assert detail["reason"].startswith("circuit open since ")
    listed = client.get("/whisperer/hook_events/", params={"webhook": sub["id"]}).json()
    assert [d["reason"] for d in listed["results"]] == [detail["reason"]]


def _open_circuit(url: str, tenant: str) -> None:
    keys = breaker.keys_for(url, tenant)
    refused = AttemptResult(
        at=datetime.now(UTC), status_code=None, error="x", response_time_ms=1, failure="connection"
    )
    for _ in range(get_settings().breaker_threshold):
        breaker.report(keys, refused)


def test_a_held_delivery_stays_pending_and_ends_failed_past_its_retention(
    client: requests.Session, tenant: Any
) -> None:
    # GIVEN two deliveries to a target whose circuit is open, one created 29.5 days ago
    sub = subscribe(client, event_type="package.created", target_url="http://127.0.0.1:9/")
    record = get_subscription(tenant.name, sub["id"])
    made = []
    for suffix in ("new", "old"):
        event_id = f"held-{suffix}-{time.time_ns()}"
        events_store.get_store().put_payload(
            event_id, "package.created", "2026-11-29T10:00:00Z", "{}"
        )
        delivery, _ = deliveries.create_delivery(
            record, event_id=event_id, event_type="package.created", event_time="t"
        )
        made.append(delivery)
    fresh, old = made
    old.update(actions=[DeliveryModel.created_date.set(datetime.now(UTC) - timedelta(days=29.5))])
    _open_circuit(record.target_url, tenant.name)
    options = SendOptions.from_settings(get_settings())
    # WHEN the dispatcher looks at them
    held = pipeline.dispatch(fresh.pk, options)
    ended = pipeline.dispatch(old.pk, options)
    # THEN the new one is held (no attempt, no retry used, still pending) ...
    assert held.kind == "held" and held.delay is not None and held.delay >= 5
    again = deliveries.get_store().get(fresh.pk)
    assert again is not None and again.status == "pending" and int(again.attempt_count) == 0
    # ... and the one held past creation + retention − 1 day ends failed, with the reason
    assert ended.kind == "failed" and ended.detail.startswith("circuit open since ")
    gone = deliveries.get_store().get(old.pk)
    assert gone is not None and gone.status == "failed" and int(gone.attempt_count) == 0
    # AND the subscription shows the circuit open to its tenant
    circuit = client.get(f"/whisperer/hooks/{sub['id']}/").json()["circuit"]
    assert circuit["state"] == "open" and circuit["until"] is not None
    # AND the operator sees why the pending one waits (the failed one is not held)
    shown = client.get(f"/whisperer/hook_events/{fresh.pk}/").json()
    assert shown["status"] == "pending"
    assert (
        shown["reason"].startswith("circuit open since ") and "; next probe at " in shown["reason"]
    )
    listed = client.get("/whisperer/hook_events/", params={"webhook": sub["id"]}).json()
    reasons = {d["uuid"]: d["reason"] for d in listed["results"]}
    assert reasons == {fresh.pk: shown["reason"], old.pk: None}
    assert client.get(f"/whisperer/hook_events/{old.pk}/").json()["reason"] is None


def test_ping_and_resend_to_a_dripping_partner_end_at_the_deadline(
    client: requests.Session, tenant: Any
) -> None:
    # GIVEN a partner that drips its status line a byte every 0.1 s
    with RawEndpoint(dripping(0.1)) as partner:
        sub = subscribe(client, event_type="package.created", target_url=partner.url("/"))
        record = get_subscription(tenant.name, sub["id"])
        event_id = f"drip-{time.time_ns()}"
        events_store.get_store().put_payload(
            event_id, "package.created", "2026-11-29T10:00:00Z", "{}"
        )
        delivery, _ = deliveries.create_delivery(
            record, event_id=event_id, event_type="package.created", event_time="t"
        )
        expected = "not delivered: no complete response within 3.5 s (connect + read timeout)"
        for path in (
            f"/whisperer/hooks/{sub['id']}/ping/",
            f"/whisperer/hook_events/{delivery.pk}/retry/",
        ):
            # WHEN an operator pings it or resends to it
            started = time.monotonic()
            answer = client.post(path)
            # THEN the answer comes at connect + read timeout (3.5 s), a 200 saying why
            assert time.monotonic() - started < 12.0
            assert answer.status_code == 200, answer.text
            assert answer.json()["detail"] == expected and answer.json()["delivered"] is False
        assert partner.accepted == 2
