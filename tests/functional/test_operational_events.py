"""Operational events on the bus, caught by a rule to a test queue (DESIGN §10).

The local stack's bus carries them with Source ``oms-webhooks``; a test rule
sends them to an SQS queue of the test's own, where they are read back.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Callable

import pytest
import requests

from oms_webhooks import names
from oms_webhooks.delivery.operational_events import (
    MAX_ERROR_CHARS,
    OperationalEvent,
    delivery_ended,
    public_url,
)
from oms_webhooks_local.publisher import publish_event
from oms_webhooks_local.stack import LocalStack
from tests.functional.helpers import (
    FAST,
    Catcher,
    deliveries_of,
    subscribe,
    subscribe_to_a_dead_partner,
    wait_until,
)
from tests.receivers import Receiver, Response


def test_public_url_drops_query_fragment_and_user_info() -> None:
    assert (
        public_url("https://u:p@Example.com:8443/a/b?token=x#f") == "https://example.com:8443/a/b"
    )
    assert public_url("http://127.0.0.1/hook") == "http://127.0.0.1/hook"


def test_an_exhausted_delivery_emits_delivery_failed(
    client: requests.Session, receiver: Receiver, catcher: Catcher
) -> None:
    # GIVEN a subscription whose endpoint always fails, with one retry
    receiver.respond(*[Response(status=500, body=b"secret stack trace")] * 5)
    sub = subscribe(
        client,
        event_type="package.created",
        target_url=receiver.url("/hook?api_key=s3cret"),
        retry_countdown_config=FAST,
        max_retries=1,
        secret_key="whsec_dGVzdHRlc3R0ZXN0dGVzdA==",
        additional_headers={"X-Partner-Key": "hdr-secret"},
    )
    event_id = publish_event("package.created", {"id": "p-1", "card": "4111"})
    # THEN webhook.delivery.failed arrives with exactly the fields of DESIGN §10
    event = catcher.wait_for("webhook.delivery.failed", lambda d: d["subscription"] == sub["id"])
    assert event["source"] == "oms-webhooks"
    detail = event["detail"]
    assert set(detail) == {
        "delivery",
        "subscription",
        "tenant",
        "event_type",
        "event_id",
        "attempts",
        "response_http_status",
        "error",
    }
    assert detail["event_id"] == event_id and detail["event_type"] == "package.created"
    assert detail["attempts"] == 2 and detail["response_http_status"] == 500
    assert detail["error"] == "HTTP 500"
    text = json.dumps(event)
    for secret in ("s3cret", "hdr-secret", "whsec_", "secret stack trace", "4111"):
        assert secret not in text


def test_a_disabled_subscription_emits_subscription_disabled(
    client: requests.Session,
    receiver: Receiver,
    catcher: Catcher,
    setting: Callable[[str, str], None],
) -> None:
    sub = subscribe_to_a_dead_partner(
        client,
        receiver,
        setting,
        event_type="shipment.created",
        target_url=receiver.url("/in?sig=abc"),
        payload={"id": 7},
    )
    event = catcher.wait_for(
        "webhook.subscription.disabled", lambda d: d["subscription"] == sub["id"]
    )
    detail = event["detail"]
    assert set(detail) == {
        "subscription",
        "tenant",
        "event_type",
        "target_url",
        "reason",
        "failing_since",
        "disabled_at",
    }
    assert detail["target_url"] == receiver.url("/in")
    assert detail["reason"] == f"failing since {detail['failing_since']}"
    assert detail["event_type"] == "shipment.created"
    assert detail["disabled_at"].endswith("Z")


def test_delivery_succeeded_only_when_enabled(
    client: requests.Session,
    receiver: Receiver,
    catcher: Catcher,
    setting: Callable[[str, str], None],
) -> None:
    quiet = subscribe(client, event_type="transfer.status.created", target_url=receiver.url("/a"))
    publish_event("transfer.status.created", {"id": 1})
    receiver.wait_for(1, timeout=10)
    wait_until(lambda: client.get("/whisperer/hook_events/").json()["results"][0]["delivered"])
    time.sleep(1.0)  # the dispatcher puts its notices just after recording the attempt
    catcher.drain()
    assert not [e for e in catcher.seen if e["detail"].get("subscription") == quiet["id"]]
    setting("emit_delivery_succeeded", "true")
    loud = subscribe(
        client, event_type="transfer.status.transferred", target_url=receiver.url("/b")
    )
    publish_event("transfer.status.transferred", {"id": 2})
    event = catcher.wait_for(
        "webhook.delivery.succeeded", lambda d: d["subscription"] == loud["id"]
    )
    assert event["detail"]["error"] is None and event["detail"]["attempts"] == 1


def test_a_publish_failure_never_fails_or_repeats_the_delivery(
    client: requests.Session, receiver: Receiver, setting: Callable[[str, str], None]
) -> None:
    # GIVEN operational events going to a bus that does not exist
    setting("emit_delivery_succeeded", "true")
    setting("bus_name", f"missing-{uuid.uuid4().hex[:8]}")
    subscribe(client, event_type="stock_location.updated", target_url=receiver.url("/"))
    # WHEN the OMS publishes on the real bus and the delivery succeeds
    publish_event("stock_location.updated", {"id": 9}, bus_name="oms")
    receiver.wait_for(1, timeout=10)

    def delivered() -> bool:
        results = client.get("/whisperer/hook_events/").json()["results"]
        return bool(results) and results[0]["status"] == "delivered"

    # THEN the delivery stays delivered and is not sent again
    wait_until(delivered)
    time.sleep(1.5)
    assert len(receiver.requests) == 1


def _delivery_failed(delivery: str, *, error: str) -> OperationalEvent:
    """A ``webhook.delivery.failed`` of ``delivery`` after 3 attempts without an answer."""
    return delivery_ended(
        delivered=False,
        delivery=delivery,
        subscription_id="s",
        tenant="t",
        event_type="package.created",
        event_id="e",
        attempts=3,
        response_http_status=None,
        error=error,
    )


def test_publish_reports_what_failed_and_never_raises(
    stack: LocalStack, setting: Callable[[str, str], None]
) -> None:
    from oms_webhooks.delivery.operational_events import DELIVERY_FAILED, publish

    event = _delivery_failed("d" * 32, error="x" * 1000)
    assert len(event.detail["error"]) == MAX_ERROR_CHARS

    # A bus that does not exist: moto refuses the entry; publish says so, never raises
    setting("bus_name", f"missing-{uuid.uuid4().hex[:8]}")
    assert publish([event]) == [DELIVERY_FAILED]


def _emf_metrics(output: str) -> list[tuple[str, str, float]]:
    """``(namespace, metric name, value)`` of every EMF line in ``output`` (CloudWatch's view)."""
    found = []
    for line in output.splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if not isinstance(record, dict) or "_aws" not in record:
            continue
        for directive in record["_aws"]["CloudWatchMetrics"]:
            for metric in directive["Metrics"]:
                values = record[metric["Name"]]
                for value in values if isinstance(values, list) else [values]:
                    found.append((directive["Namespace"], metric["Name"], float(value)))
    return found


def test_the_api_counts_an_operational_event_it_could_not_publish(
    client: requests.Session,
    receiver: Receiver,
    catcher: Catcher,
    setting: Callable[[str, str], None],
    capfd: pytest.CaptureFixture[str],
) -> None:
    # GIVEN a delivery that failed (no retries), its webhook.delivery.failed on the bus
    receiver.respond(*[Response(status=500)] * 3)
    sub = subscribe(
        client, event_type="shipment.status.updated", target_url=receiver.url("/"), max_retries=0
    )
    publish_event("shipment.status.updated", {"id": 11})
    catcher.wait_for("webhook.delivery.failed", lambda d: d["subscription"] == sub["id"])
    (delivery,) = deliveries_of(client, sub["id"])
    # WHEN an operator resends it through the API while the bus cannot take events
    setting("bus_name", f"missing-{uuid.uuid4().hex[:8]}")
    capfd.readouterr()
    answer = client.post(f"/whisperer/hook_events/{delivery['uuid']}/retry/", json={})
    # THEN the resend answers as usual (the partner's 500) ...
    assert answer.status_code == 200, answer.text
    assert answer.json()["response_status"] == 500
    # AND the API process emitted the metric an operator alarms on (EMF on stdout)
    emitted = _emf_metrics(capfd.readouterr().out)
    namespace = os.environ.get("POWERTOOLS_METRICS_NAMESPACE", names.METRICS_NAMESPACE)
    assert (namespace, "OperationalEventNotPublished", 1.0) in emitted, emitted


def test_the_dispatcher_and_the_api_report_an_unpublished_event_alike(
    stack: LocalStack,
    setting: Callable[[str, str], None],
    capfd: pytest.CaptureFixture[str],
) -> None:
    from aws_lambda_powertools import Logger, Metrics

    from oms_webhooks.delivery.operational_events import (
        DELIVERY_FAILED,
        NOT_PUBLISHED_METRIC,
        publish_reported,
    )

    event = _delivery_failed("e" * 32, error="HTTP 500")
    namespace = "OmsWebhooksReportTest"
    metrics = Metrics(namespace=namespace)
    log = Logger(service="oms-webhooks-report-test")
    # GIVEN a bus that does not exist
    setting("bus_name", f"missing-{uuid.uuid4().hex[:8]}")
    capfd.readouterr()
    # WHEN the API's resend reports (flushed at once) and the dispatcher reports (flushed
    # with its batch)
    api = publish_reported([event], delivery_uuid="e" * 32, metrics=metrics, log=log, flush=True)
    api_out = capfd.readouterr().out
    dispatcher = publish_reported([event], delivery_uuid="e" * 32, metrics=metrics, log=log)
    metrics.flush_metrics()
    dispatcher_out = capfd.readouterr().out
    # THEN both say what failed, log it with the delivery, and emit the metric once each
    assert api == dispatcher == [DELIVERY_FAILED]
    for out in (api_out, dispatcher_out):
        assert _emf_metrics(out).count((namespace, NOT_PUBLISHED_METRIC, 1.0)) == 1, out
        logged = [json.loads(line) for line in out.splitlines() if '"level":"ERROR"' in line]
        assert [line["delivery_uuid"] for line in logged] == ["e" * 32], out
    # AND nothing is reported when there is nothing to publish
    assert publish_reported([], delivery_uuid="e" * 32, metrics=metrics, log=log) == []
