"""A manual resend and an automatic attempt of one delivery never POST at once (DESIGN §9).

Both take the same lease on the delivery: a resend made while an automatic
attempt is in flight answers 409 (never 5xx), and an automatic attempt that
finds a resend in flight holds its message until the resend's lease ends
(its schedule kept, no retry used). On the local stack, with real receivers.
"""

from __future__ import annotations

import itertools
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import requests

from oms_webhooks.delivery import claim, pipeline
from oms_webhooks.delivery import store as deliveries
from oms_webhooks.delivery.request.sender import SendOptions
from oms_webhooks.routing import events_store
from oms_webhooks.subscriptions.service import get_subscription
from oms_webhooks_local.publisher import publish_event
from tests.functional.helpers import subscribe, wait_until
from tests.receivers import Receiver, Response

OPTIONS = SendOptions(allow_private=True, connect_timeout=1.0, read_timeout=8.0)


def _delivery(client: requests.Session, tenant: Any, url: str) -> str:
    """A pending delivery made directly (no SQS message: no poller takes part)."""
    sub = subscribe(client, event_type="package.created", target_url=url)
    record = get_subscription(tenant.name, sub["id"])
    event_id = f"race-{time.time_ns()}"
    events_store.get_store().put_payload(
        event_id, "package.created", "2026-11-29T10:00:00Z", '{"id": 1}'
    )
    delivery, _ = deliveries.create_delivery(
        record, event_id=event_id, event_type="package.created", event_time="t"
    )
    return delivery.pk


def test_a_resend_during_an_automatic_attempt_is_a_409_without_a_post(
    client: requests.Session, tenant: Any
) -> None:
    # GIVEN an automatic attempt in flight to a target answering after 3 s (loaded machine)
    with Receiver(default=Response(status=500, body=b"down", delay=3.0)) as receiver:
        uid = _delivery(client, tenant, receiver.url("/"))
        with ThreadPoolExecutor(1) as pool:
            automatic = pool.submit(pipeline.dispatch, uid, OPTIONS)
            receiver.wait_for(1)
            # WHEN an operator resends it meanwhile
            answer = client.post(f"/whisperer/hook_events/{uid}/retry/")
            # THEN the resend is refused with a 409, and nothing more is sent
            assert answer.status_code == 409, answer.text
            assert "in progress" in answer.json()["detail"]
            assert automatic.result(timeout=10).kind == "retry"
        assert len(receiver.requests) == 1
        # AND once the attempt is recorded, a resend goes through
        again = client.post(f"/whisperer/hook_events/{uid}/retry/")
        assert again.status_code == 200 and again.json()["response_status"] == 500
        assert len(receiver.requests) == 2


def test_an_automatic_attempt_during_a_resend_holds_back_until_its_lease_ends(
    client: requests.Session, tenant: Any
) -> None:
    # GIVEN an operator's resend in flight to a target answering after 3 s (loaded machine)
    with Receiver(default=Response(status=500, body=b"down", delay=3.0)) as receiver:
        uid = _delivery(client, tenant, receiver.url("/"))
        with ThreadPoolExecutor(1) as pool:
            manual = pool.submit(client.post, f"/whisperer/hook_events/{uid}/retry/")
            receiver.wait_for(1)
            # WHEN the automatic attempt's message arrives meanwhile
            held = pipeline.dispatch(uid, OPTIONS)
            # THEN it posts nothing and comes back when the resend's lease ends
            assert held.kind == "not_due" and held.detail == "a manual resend is in progress"
            bound = claim.MANUAL_HOLD_SECONDS + claim.LEASE_JITTER_SECONDS
            assert held.delay is not None and 0 < held.delay <= bound
            assert len(receiver.requests) == 1
            assert manual.result(timeout=10).status_code == 200
        # AND after the (failed) resend the automatic attempt is still due, and made
        delivery = deliveries.get_store().get(uid)
        assert delivery is not None and delivery.lease_until is None
        assert delivery.status == "pending" and int(delivery.retry_count) == 0
        assert pipeline.dispatch(uid, OPTIONS).kind == "retry"
        assert len(receiver.requests) == 2


def test_resends_racing_automatic_retries_never_overlap_nor_answer_5xx(
    client: requests.Session,
) -> None:
    # GIVEN a target that answers 500 after 0.4 s, retried every second by the stack
    with Receiver(default=Response(status=500, body=b"down", delay=0.4)) as receiver:
        subscribe(
            client,
            event_type="stock_location.updated",
            target_url=receiver.url("/"),
            max_retries=4,
            retry_countdown_config={"choice": "fixed", "kwargs": {"seconds": 1}},
        )
        publish_event("stock_location.updated", {"id": "race"})
        (first,) = receiver.wait_for(1)
        uid = first.headers["webhook-id"]
        # WHEN two operators resend it over and over while the retries run
        answers: list[int] = []
        stop = threading.Event()

        def operator() -> None:
            while not stop.wait(0.8):
                answers.append(client.post(f"/whisperer/hook_events/{uid}/retry/").status_code)

        threads = [threading.Thread(target=operator) for _ in range(2)]
        for thread in threads:
            thread.start()
        wait_until(
            lambda: (
                len(answers) >= 4
                and (d := deliveries.get_store().get(uid)) is not None
                and int(d.retry_count) >= 1
            ),
            timeout=30,
        )
        stop.set()
        for thread in threads:
            thread.join(15)
    # THEN no two POSTs of the delivery overlapped (each takes 0.4 s at the target)
    arrivals = sorted(r.received_at for r in receiver.requests)
    gaps = [later - earlier for earlier, later in itertools.pairwise(arrivals)]
    assert min(gaps) >= 0.35, gaps
    # AND every resend answered 200 (made) or 409 (another attempt in flight), never 5xx
    assert answers and set(answers) <= {200, 409}, answers
    assert 200 in answers
