"""Recover on the local stack: kept events re-sent with their original webhook-ids (DESIGN §10)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests

from oms_webhooks_local.publisher import publish_event
from tests.functional.helpers import subscribe, wait_until
from tests.receivers import Receiver, Response


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _recover(client: requests.Session, sub_id: str, **body: Any) -> requests.Response:
    return client.post(f"/whisperer/hooks/{sub_id}/recover/", json=body)


def _done(client: requests.Session, sub_id: str, recovery: str) -> dict[str, Any]:
    def finished() -> dict[str, Any] | None:
        answer = client.get(f"/whisperer/hooks/{sub_id}/recover/{recovery}/")
        assert answer.status_code == 200, answer.text
        body = answer.json()
        return body if body["status"] != "running" else None

    result: dict[str, Any] = wait_until(finished, timeout=60)
    return result


def _routed(event_type: str, since: datetime, count: int) -> None:
    """Wait until the router has kept ``count`` events of ``event_type`` since ``since``.

    It keeps an event just before fanning it out; the half second after is
    room for the fan-out (a fixed sleep alone was too short on a loaded machine).
    """
    from oms_webhooks.routing import kept_events

    def kept() -> bool:
        found = kept_events.find(event_type, since, datetime.now(UTC) + timedelta(seconds=5))
        return len(list(found)) >= count

    wait_until(kept, timeout=30)
    time.sleep(0.5)


def _ids(receiver: Receiver) -> list[str]:
    return [r.headers["webhook-id"] for r in receiver.requests]


def test_a_deactivated_subscription_recovers_exactly_what_it_missed_once(
    client: requests.Session, receiver: Receiver
) -> None:
    # GIVEN a subscription that got event 1, then was off while events 2 and 3 were published
    sub = subscribe(client, event_type="package.created", target_url=receiver.url("/"))
    path = f"/whisperer/hooks/{sub['id']}/"
    since = datetime.now(UTC)
    publish_event("package.created", {"n": 1})
    receiver.wait_for(1, timeout=10)
    assert client.patch(path, json={"is_active": False}).status_code == 200
    publish_event("package.created", {"n": 2})
    publish_event("package.created", {"n": 3})
    _routed("package.created", since, 3)  # fanned out (events 2 and 3 to nobody)
    assert len(receiver.requests) == 1
    assert client.patch(path, json={"is_active": True}).status_code == 200
    # WHEN it recovers since before event 1 (event 1 was delivered: skipped)
    answer = _recover(client, sub["id"], since=_iso(since))
    assert answer.status_code == 202, answer.text
    body = answer.json()
    assert set(body) == {"detail", "recovery", "queued"}
    progress = _done(client, sub["id"], body["recovery"])
    # THEN exactly events 2 and 3 arrive, each once
    assert progress["status"] == "done" and progress["queued"] == 2
    assert progress["skipped"] == 1
    got = receiver.wait_for(3, timeout=10)
    assert sorted(json.loads(r.body)["payload"]["n"] for r in got[1:]) == [2, 3]
    # AND their webhook-ids are the delivery ids the log shows
    log = client.get("/whisperer/hook_events/").json()["results"]
    assert sorted(_ids(receiver)) == sorted(d["uuid"] for d in log)
    # WHEN recover is called again, THEN nothing is sent twice
    again = _recover(client, sub["id"], since=_iso(since))
    assert again.status_code == 202
    second = _done(client, sub["id"], again.json()["recovery"])
    assert second["queued"] == 0 and second["skipped"] == 3
    time.sleep(1.0)
    assert len(receiver.requests) == 3


def test_a_failed_delivery_is_reopened_with_its_webhook_id(
    client: requests.Session, receiver: Receiver
) -> None:
    # GIVEN a delivery that ended failed (no retries) with one attempt
    receiver.respond(Response(status=500))
    since = datetime.now(UTC)
    sub = subscribe(
        client, event_type="shipment.created", target_url=receiver.url("/"), max_retries=0
    )
    publish_event("shipment.created", {"id": "s-1"})
    first = receiver.wait_for(1, timeout=10)[0]
    wait_until(
        lambda: client.get("/whisperer/hook_events/").json()["results"][0]["status"] == "failed"
    )
    # WHEN the partner is back and recovers
    answer = _recover(client, sub["id"], since=_iso(since))
    assert answer.status_code == 202
    assert _done(client, sub["id"], answer.json()["recovery"])["queued"] == 1
    # THEN the same delivery (same webhook-id) is sent and delivered; both attempts are kept
    second = receiver.wait_for(2, timeout=10)[1]
    assert second.headers["webhook-id"] == first.headers["webhook-id"]
    uid = first.headers["webhook-id"]
    detail = wait_until(
        lambda: (
            (d := client.get(f"/whisperer/hook_events/{uid}/").json())["status"] == "delivered"
            and d
        )
    )
    assert detail["retry_count"] == 0
    assert len(detail["attempts"]) == 2


def test_recover_refuses_inactive_subscriptions_and_windows_outside_the_retention(
    client: requests.Session, receiver: Receiver
) -> None:
    sub = subscribe(client, event_type="transfer.status.created", target_url=receiver.url("/"))
    now = datetime.now(UTC)
    old = _recover(client, sub["id"], since=_iso(now - timedelta(days=31)))
    assert old.status_code == 400 and "since" in old.json()["errors"]
    backwards = _recover(
        client,
        sub["id"],
        since=_iso(now - timedelta(hours=1)),
        until=_iso(now - timedelta(hours=2)),
    )
    assert backwards.status_code == 400 and "since" in backwards.json()["errors"]
    numeric = _recover(client, sub["id"], since=1700000000)
    assert numeric.status_code == 400 and "since" in numeric.json()["errors"]
    missing = _recover(client, sub["id"])
    assert missing.status_code == 400
    client.patch(f"/whisperer/hooks/{sub['id']}/", json={"is_active": False})
    inactive = _recover(client, sub["id"], since=_iso(now - timedelta(hours=1)))
    assert inactive.status_code == 409, inactive.text
    unknown = _recover(client, "0" * 36, since=_iso(now - timedelta(hours=1)))
    assert unknown.status_code == 404
    progress = client.get(f"/whisperer/hooks/{sub['id']}/recover/{'0' * 32}/")
    assert progress.status_code == 404


def test_another_tenant_cannot_see_a_recovery(
    client: requests.Session, receiver: Receiver, stack: Any
) -> None:
    import uuid as uuid_

    from oms_webhooks.api.tokens import create_token
    from tests.functional.helpers import api

    sub = subscribe(client, event_type="stock_location.created", target_url=receiver.url("/"))
    answer = _recover(client, sub["id"], since=_iso(datetime.now(UTC) - timedelta(minutes=1)))
    assert answer.status_code == 202
    _, token = create_token(tenant=f"t-{uuid_.uuid4().hex[:16]}")
    other = api(stack, token)
    path = f"/whisperer/hooks/{sub['id']}/recover/{answer.json()['recovery']}/"
    assert other.get(path).status_code == 404
    assert (
        other.post(
            f"/whisperer/hooks/{sub['id']}/recover/", json={"since": "2026-01-01T00:00:00Z"}
        ).status_code
        == 404
    )


def test_a_large_recovery_does_not_delay_another_partners_deliveries(
    client: requests.Session, setting: Callable[[str, str], None]
) -> None:
    # GIVEN 20 missed events recovered at 2 per second (10 s)
    setting("recover_rate", "2")
    with Receiver() as slow_lane, Receiver() as other:
        sub = subscribe(client, event_type="package.status.packed", target_url=slow_lane.url("/"))
        since = datetime.now(UTC)
        client.patch(f"/whisperer/hooks/{sub['id']}/", json={"is_active": False})
        for n in range(20):
            publish_event("package.status.packed", {"n": n})
        _routed("package.status.packed", since, 20)
        client.patch(f"/whisperer/hooks/{sub['id']}/", json={"is_active": True})
        subscribe(client, event_type="shipment.status.updated", target_url=other.url("/"))
        answer = _recover(client, sub["id"], since=_iso(since))
        assert answer.status_code == 202
        # WHEN another partner's event is published while the recovery runs
        time.sleep(0.5)
        publish_event("shipment.status.updated", {"id": "x"})
        other.wait_for(1, timeout=10)
        # THEN it arrived before the recovery was done
        recovered_so_far = len(slow_lane.requests)
        assert recovered_so_far < 20
        assert _done(client, sub["id"], answer.json()["recovery"])["queued"] == 20
        assert len(slow_lane.wait_for(20, timeout=15)) == 20


def test_a_recovery_stops_when_the_subscription_is_deactivated(
    client: requests.Session, receiver: Receiver, setting: Callable[[str, str], None]
) -> None:
    # GIVEN a slow recovery (2 per second) of 20 missed events
    setting("recover_rate", "2")
    sub = subscribe(client, event_type="transfer.status.cancelled", target_url=receiver.url("/"))
    path = f"/whisperer/hooks/{sub['id']}/"
    since = datetime.now(UTC)
    client.patch(path, json={"is_active": False})
    for n in range(20):
        publish_event("transfer.status.cancelled", {"n": n})
    _routed("transfer.status.cancelled", since, 20)
    client.patch(path, json={"is_active": True})
    answer = _recover(client, sub["id"], since=_iso(since))
    assert answer.status_code == 202
    receiver.wait_for(1, timeout=10)
    # WHEN the subscription is deactivated meanwhile
    client.patch(path, json={"is_active": False})
    # THEN the recovery stops short
    result = _done(client, sub["id"], answer.json()["recovery"])
    assert result["status"] == "stopped" and result["queued"] < 20


def test_a_token_scoped_to_other_event_types_cannot_recover(
    client: requests.Session, receiver: Receiver, stack: Any, tenant: Any
) -> None:
    from oms_webhooks.api.tokens import create_token
    from tests.functional.helpers import api

    sub = subscribe(client, event_type="shipment.cancelled", target_url=receiver.url("/"))
    _, token = create_token(tenant=tenant.name, event_types=["package.created"])
    scoped = api(stack, token)
    body = {"since": _iso(datetime.now(UTC) - timedelta(minutes=1))}
    assert scoped.post(f"/whisperer/hooks/{sub['id']}/recover/", json=body).status_code == 404


def test_recover_honours_the_current_filter(client: requests.Session, receiver: Receiver) -> None:
    sub = subscribe(client, event_type="package.status.transitioned", target_url=receiver.url("/"))
    path = f"/whisperer/hooks/{sub['id']}/"
    since = datetime.now(UTC)
    client.patch(path, json={"is_active": False})
    for n in range(4):
        publish_event("package.status.transitioned", {"n": n})
    _routed("package.status.transitioned", since, 4)
    # WHEN it is re-activated with a filter and recovers
    patched = client.patch(path, json={"is_active": True, "filter": "n >= `2`"})
    assert patched.status_code == 200, patched.text
    answer = _recover(client, sub["id"], since=_iso(since))
    result = _done(client, sub["id"], answer.json()["recovery"])
    # THEN only the events its filter passes are sent
    assert result["queued"] == 2 and result["skipped"] == 2
    got = receiver.wait_for(2, timeout=10)
    assert sorted(json.loads(r.body)["payload"]["n"] for r in got) == [2, 3]


def test_a_running_recovery_without_its_message_is_resumed(
    client: requests.Session, receiver: Receiver, tenant: Any
) -> None:
    # GIVEN a running recovery whose queue message was lost (a local stack restart)
    from oms_webhooks.aws_clients import client as aws_client
    from oms_webhooks.delivery import store as deliveries
    from oms_webhooks.routing import recovery
    from oms_webhooks.settings import get_settings
    from oms_webhooks.storage.models import RecoveryModel

    sub = subscribe(client, event_type="package.shipment.awb_number", target_url=receiver.url("/"))
    path = f"/whisperer/hooks/{sub['id']}/"
    since = datetime.now(UTC)
    client.patch(path, json={"is_active": False})
    publish_event("package.shipment.awb_number", {"awb": "A1"})
    _routed("package.shipment.awb_number", since, 1)
    client.patch(path, json={"is_active": True})
    now = datetime.now(UTC)
    RecoveryModel(
        "recovery#" + "ab" * 16,
        "recovery",
        recovery_id="ab" * 16,
        tenant=tenant.name,
        subscription_id=sub["id"],
        since=since,
        window_end=now,
        status=recovery.RUNNING,
        created_date=now,
        modified_date=now,
        expires_at=deliveries.expires_at(),
    ).save()
    # WHEN running recoveries are resumed, THEN it finishes and the event arrives
    sqs = aws_client("sqs")
    assert recovery.resume_running(sqs=sqs, queue_url=get_settings().recovery_queue_url) >= 1
    assert _done(client, sub["id"], "ab" * 16)["queued"] == 1
    assert json.loads(receiver.wait_for(1, timeout=10)[0].body)["payload"] == {"awb": "A1"}


@pytest.fixture
def router_cache(setting: Callable[[str, str], None]) -> Iterator[Callable[[float], None]]:
    """``router_cache(seconds)``: the router keeps subscriptions that long, from an empty cache."""
    from oms_webhooks.routing import fanout

    def set_(seconds: float) -> None:
        setting("router_cache_seconds", str(seconds))
        fanout._cache.clear()

    yield set_
    fanout._cache.clear()


def test_without_until_recover_covers_events_a_stale_router_cache_missed(
    client: requests.Session,
    receiver: Receiver,
    tenant: Any,
    router_cache: Callable[[float], None],
) -> None:
    from oms_webhooks.delivery.store import delivery_uuid
    from oms_webhooks.routing import fanout

    # GIVEN a router whose subscription cache (20 s) was filled while the subscription was off
    # (20 s: the re-activation, the recover call and the event must all come before it
    # expires, or the router itself finds the subscription; 8 s was too short at load 9)
    router_cache(20)
    sub = subscribe(client, event_type="transfer.status.in_transit", target_url=receiver.url("/"))
    path = f"/whisperer/hooks/{sub['id']}/"
    assert client.patch(path, json={"is_active": False}).status_code == 200
    assert sub["id"] not in {
        s.id for s in fanout.matching_subscriptions("transfer.status.in_transit")
    }
    since = datetime.now(UTC)
    # WHEN it is re-activated and recovers without `until`, and an event follows at once
    assert client.patch(path, json={"is_active": True}).status_code == 200
    answer = _recover(client, sub["id"], since=_iso(since))
    assert answer.status_code == 202, answer.text
    event_id = publish_event("transfer.status.in_transit", {"n": 1})
    # THEN the router's stale cache skips it, and the recovery, whose window runs on
    # for the cache's 20 s, sends it: once, with its usual webhook-id
    result = _done(client, sub["id"], answer.json()["recovery"])
    assert result["status"] == "done" and result["queued"] == 1, result
    (got,) = receiver.wait_for(1, timeout=30)
    time.sleep(1.0)
    assert len(receiver.requests) == 1
    assert json.loads(got.body)["payload"] == {"n": 1}
    assert got.headers["webhook-id"] == delivery_uuid(event_id, tenant.name, sub["id"])


def test_a_recovery_whose_pass_runs_past_its_window_still_finishes(
    client: requests.Session,
    receiver: Receiver,
    setting: Callable[[str, str], None],
    router_cache: Callable[[float], None],
) -> None:
    # GIVEN two missed events, recovered at one per 4 s, in a window that ends 1 s after
    # the call: the pass that sends them ends after the window does (if the recoverer
    # starts within 3 s of the call, as it does even on a loaded machine)
    setting("recover_rate", "0.25")
    router_cache(1)
    event_type = "transfer.status.ready_to_shipment"
    sub = subscribe(client, event_type=event_type, target_url=receiver.url("/"))
    path = f"/whisperer/hooks/{sub['id']}/"
    since = datetime.now(UTC)
    assert client.patch(path, json={"is_active": False}).status_code == 200
    router_cache(1)
    for n in range(2):
        publish_event(event_type, {"n": n})
    _routed(event_type, since, 2)
    assert client.patch(path, json={"is_active": True}).status_code == 200
    # WHEN it recovers without `until`
    answer = _recover(client, sub["id"], since=_iso(since))
    assert answer.status_code == 202, answer.text
    # THEN the recovery finishes (it once slept a negative time, failed its record
    # and stood still for the queue's 12-minute visibility timeout) and sends both
    result = _done(client, sub["id"], answer.json()["recovery"])
    assert result["status"] == "done" and result["queued"] == 2, result
    got = receiver.wait_for(2)
    assert sorted(json.loads(r.body)["payload"]["n"] for r in got) == [0, 1]


def test_the_recoverer_counts_each_recovery_in_a_metric_and_never_warns(
    stack: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    import threading
    import uuid as uuid_
    import warnings

    from oms_webhooks.handlers import recoverer
    from oms_webhooks_local.lambda_context import FakeLambdaContext
    from oms_webhooks_local.pollers import lambda_sqs_record

    # GIVEN a recovery message (for a recovery that is gone: finished at once)
    message = {
        "MessageId": str(uuid_.uuid4()),
        "ReceiptHandle": "r",
        "Body": json.dumps({"recovery": uuid_.uuid4().hex}),
        "Attributes": {"ApproximateReceiveCount": "1"},
    }
    arn = "arn:aws:sqs:us-east-1:123456789012:oms-webhooks-recovery"
    record = lambda_sqs_record(message, arn, "us-east-1")
    capsys.readouterr()
    # WHEN the recoverer handles it (warnings of this thread only: the session stack's
    # pollers run their handlers in other threads of this process)
    me, caught = threading.get_ident(), []

    def show(message: Warning | str, *_: Any, **__: Any) -> None:
        if threading.get_ident() == me:
            caught.append(str(message))

    with warnings.catch_warnings():
        warnings.simplefilter("always")
        warnings.showwarning = show
        answer = recoverer.handler(
            {"Records": [record]}, FakeLambdaContext("oms-webhooks-recoverer", timeout_seconds=60)
        )
    # THEN the record succeeded, the metrics line counts it, and Powertools did not warn
    # of an empty metrics flush (it once did, on the console of every `make run`)
    assert answer == {"batchItemFailures": []}
    emf = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line]
    assert any(m.get("RecoveryWorkedOn") in (1.0, [1.0]) for m in emf), emf
    assert not [w for w in caught if "No application metrics" in w], caught
