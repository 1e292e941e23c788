"""Hostile input and odd partner answers (issue 13): a clear error or a delivery, never a
crash, a silent loss or a leak. On the local stack, with real receivers on 127.0.0.1."""

from __future__ import annotations

import base64
import itertools
import json
import threading
import time
from collections import defaultdict
from typing import Any

import pytest
import requests
from click.testing import CliRunner

from oms_webhooks.handlers import router
from oms_webhooks.routing.event_json import MAX_NESTING_DEPTH
from oms_webhooks.settings import get_settings
from oms_webhooks_local.cli import main
from oms_webhooks_local.lambda_context import FakeLambdaContext
from oms_webhooks_local.publisher import InvalidEvent, events_client, publish_event
from oms_webhooks_local.receiver import check_whisperer
from oms_webhooks_local.stack import LocalStack
from tests.functional.helpers import FAST, subscribe, wait_until
from tests.receivers import Receiver, RecordedRequest, Response

#: Retry-After values a partner sent, as http.client hands them over (Latin-1 per byte).
ODD_RETRY_AFTER: dict[str, list[tuple[str, str]]] = {
    "/superscript": [("Retry-After", "²")],
    "/arabic-indic": [("Retry-After", "٣".encode().decode("latin-1"))],
    "/negative": [("Retry-After", "-5")],
    "/fraction": [("Retry-After", "1.5")],
    "/past-date": [("Retry-After", "Wed, 21 Oct 2015 07:28:00 GMT")],
    "/garbage": [("Retry-After", "soon, maybe")],
    "/two-headers": [("Retry-After", "1"), ("Retry-After", "7200")],
}


def test_odd_retry_after_values_fall_back_to_the_countdown(client: requests.Session) -> None:
    # GIVEN a partner answering its first request per path 503 with an odd Retry-After
    seen: defaultdict[str, int] = defaultdict(int)
    lock = threading.Lock()

    def responder(request: RecordedRequest) -> Response:
        with lock:
            seen[request.path] += 1
            first = seen[request.path] == 1
        if first:
            return Response(status=503, headers=ODD_RETRY_AFTER[request.path])
        return Response(status=200)

    with Receiver(responder=responder) as receiver:
        for path in ODD_RETRY_AFTER:
            subscribe(
                client,
                event_type="transfer.status.created",
                target_url=receiver.url(path),
                retry_countdown_config=FAST,
                max_retries=2,
            )
        # WHEN one event goes to all of them
        publish_event("transfer.status.created", {"id": 13})
        # THEN each is retried on its 1 s countdown (a raise in the dispatcher would
        # hold the message for the queue's 6-minute visibility timeout instead)
        received = receiver.wait_for(2 * len(ODD_RETRY_AFTER), timeout=30)
    by_path: defaultdict[str, list[RecordedRequest]] = defaultdict(list)
    for request in received:
        by_path[request.path].append(request)
    assert set(by_path) == set(ODD_RETRY_AFTER)
    for path, (first, second, *_) in by_path.items():
        assert 0.9 <= second.received_at - first.received_at < 25, path


def test_a_zero_countdown_schedule_retries_at_most_once_a_second(
    client: requests.Session, receiver: Receiver
) -> None:
    # GIVEN a schedule whose formula gives 0 s (exponential base 0: 1, 0, 0, ...)
    receiver.respond(*[Response(status=500)] * 10)
    subscribe(
        client,
        event_type="transfer.status.cancelled",
        target_url=receiver.url("/"),
        retry_countdown_config={"choice": "exponential", "kwargs": {"base": 0}},
        max_retries=3,
    )
    # WHEN its deliveries keep failing
    publish_event("transfer.status.cancelled", {"id": 6})
    attempts = receiver.wait_for(4, timeout=20)
    # THEN every retry waits at least the 1 s floor
    gaps = [b.received_at - a.received_at for a, b in itertools.pairwise(attempts)]
    assert all(gap >= 0.95 for gap in gaps), gaps


def test_a_header_name_with_a_trailing_newline_is_a_400(client: requests.Session) -> None:
    response = client.post(
        "/whisperer/hooks/",
        json={
            "event_type": "package.created",
            "target_url": "http://127.0.0.1:9/",
            "additional_headers": {"X-Partner\n": "v"},
        },
    )
    assert response.status_code == 400, response.text
    assert "additional_headers" in response.json()["errors"]


def _payload_of(request: RecordedRequest) -> Any:
    return json.loads(request.body)["payload"]


def test_a_lone_surrogate_escape_is_delivered_as_an_escape(
    client: requests.Session, receiver: Receiver
) -> None:
    # GIVEN a Detail holding a lone surrogate escape: valid JSON, not valid Unicode
    subscribe(
        client,
        event_type="stock_location.created",
        target_url=receiver.url("/"),
        secret_key="s3cret",
    )
    # WHEN it is published as JSON text and as the parsed object
    publish_event("stock_location.created", '{"note": "half \\ud800 a pair", "n": 1}')
    publish_event("stock_location.created", {"note": "half \ud83d", "n": 2})
    # THEN both are delivered, the escape kept in the signed body (valid UTF-8)
    requests_ = receiver.wait_for(2, timeout=20)
    bodies = {_payload_of(r)["n"]: r for r in requests_}
    assert b'"half \\ud800 a pair"' in bodies[1].body
    assert b'"half \\ud83d"' in bodies[2].body
    for request in requests_:
        request.body.decode("utf-8")  # strict: the body is UTF-8
        assert check_whisperer("s3cret", request.body, request.headers["X-Whisperer-Signature"])
    assert _payload_of(bodies[2])["note"] == "half \ud83d"  # JSON-equal to the Detail


def test_publish_data_with_a_lone_surrogate_does_not_crash_the_cli(
    stack: LocalStack, client: requests.Session, receiver: Receiver
) -> None:
    subscribe(client, event_type="stock_location.updated", target_url=receiver.url("/"))
    result = CliRunner().invoke(
        main,
        [
            "publish",
            "stock_location.updated",
            "--data",
            '{"name": "\\udc80 trailing half"}',
            "--endpoint-url",
            stack.aws_endpoint_url,
        ],
    )
    assert result.exit_code == 0, result.output
    assert result.exception is None
    (request,) = receiver.wait_for(1, timeout=20)
    assert _payload_of(request) == {"name": "\udc80 trailing half"}


def test_90_kb_of_emoji_is_delivered(client: requests.Session, receiver: Receiver) -> None:
    # GIVEN a Detail of ~90 KB of emoji: 4 UTF-8 bytes each (as EventBridge counts),
    # a 12-byte \ud83d\ude00 escape each in the queue message (~270 KB)
    text = "😀" * 22_500
    subscribe(client, event_type="package.status.shipped", target_url=receiver.url("/"))
    publish_event("package.status.shipped", {"text": text})
    # THEN it is delivered whole, in UTF-8, not refused as oversize
    (request,) = receiver.wait_for(1, timeout=20)
    assert _payload_of(request) == {"text": text}
    assert "😀".encode() * 22_500 in request.body


def test_a_router_failure_logs_its_reason(caplog: pytest.LogCaptureFixture) -> None:
    # GIVEN a record the router cannot even read (no body at all)
    record = {
        "messageId": "m-1",
        "receiptHandle": "r",
        "body": None,
        "attributes": {},
        "messageAttributes": {},
        "md5OfBody": "",
        "eventSource": "aws:sqs",
        "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:oms-webhooks-ingress",
        "awsRegion": "us-east-1",
    }
    # WHEN the router handles it
    context = FakeLambdaContext("oms-webhooks-router", timeout_seconds=30.0)
    answer = router.handler({"Records": [record]}, context)
    # THEN the record comes back (retried, then dead-lettered) and the log says why
    assert answer == {"batchItemFailures": [{"itemIdentifier": "m-1"}]}
    (error,) = [r for r in caplog.records if r.levelname == "ERROR"]
    assert error.message_id == "m-1"  # type: ignore[attr-defined]
    assert "could not be read" in error.getMessage()
    assert error.exc_info is not None and error.exc_info[0] is TypeError


def _nested(depth: int) -> dict[str, Any]:
    """An object nested ``depth`` levels deep (``{"a": {"a": ... {"leaf": 1}}}``)."""
    value: dict[str, Any] = {"leaf": 1}
    for _ in range(depth - 1):
        value = {"a": value}
    return value


def test_a_deeply_nested_payload_is_delivered_and_shown(
    client: requests.Session, receiver: Receiver
) -> None:
    # GIVEN a Detail nested as deep as the router routes (pydantic stops at ~250)
    detail = _nested(MAX_NESTING_DEPTH)
    subscribe(client, event_type="package.status.cancelled", target_url=receiver.url("/"))
    publish_event("package.status.cancelled", detail)
    (request,) = receiver.wait_for(1, timeout=20)
    assert _payload_of(request) == detail
    # THEN its delivery log page shows it (it answered 502 before)
    (item,) = wait_until(lambda: client.get("/whisperer/hook_events/").json()["results"])
    page = client.get(f"/whisperer/hook_events/{item['uuid']}/")
    assert page.status_code == 200, page.text[:300]
    shown = page.json()
    assert shown["request_payload"]["payload"] == detail
    assert shown["request_payload"]["event"]["uuid"] == item["uuid"]
    assert shown["uuid"] == item["uuid"] and shown["attempts"][0]["response_http_status"] == 200


def test_deeper_nesting_is_refused_by_the_publisher_and_not_routed(
    client: requests.Session, receiver: Receiver
) -> None:
    subscribe(client, event_type="package.status.packed_for_refund", target_url=receiver.url("/"))
    too_deep = _nested(MAX_NESTING_DEPTH + 1)
    with pytest.raises(InvalidEvent, match="levels deep"):
        publish_event("package.status.packed_for_refund", too_deep)
    # put straight on the bus, it is acknowledged as unroutable, never half-delivered
    events_client().put_events(
        Entries=[
            {
                "EventBusName": get_settings().bus_name,
                "Source": get_settings().event_source,
                "DetailType": "package.status.packed_for_refund",
                "Detail": json.dumps(too_deep),
            }
        ]
    )
    publish_event("package.status.packed_for_refund", {"after": True})
    receiver.wait_for(1, timeout=20)
    time.sleep(1.0)  # room for the deep one to arrive, had it been routed
    (request,) = receiver.requests
    assert _payload_of(request) == {"after": True}


API_KEY = "key-live-5b1e7c9d"
PASSWORD = 'pw/with"quotes&more'
SIGNING_SECRET = "signing-secret-0f3a9"


def _echo(request: RecordedRequest) -> Response:
    """A partner's error page that echoes the request headers (raw and as JSON) and,
    misconfigured, its own copy of the signing secret."""
    echoed = dict(request.header_items)
    basic = echoed.get("Authorization", "").removeprefix("Basic ")
    echoed["Credentials"] = base64.b64decode(basic).decode()  # as a debug page decodes it
    raw = "".join(f"{name}: {value}\n" for name, value in echoed.items())
    body = f"<pre>{raw}</pre>\n{json.dumps(echoed)}\nkey={SIGNING_SECRET}"
    return Response(status=500, body=body.encode())


def _leaks(text: str | None) -> list[str]:
    basic = base64.b64encode(f"partner:{PASSWORD}".encode()).decode()
    spellings = [API_KEY, PASSWORD, json.dumps(PASSWORD)[1:-1], basic, SIGNING_SECRET]
    return [s for s in spellings if text and s in text]


def test_secrets_echoed_by_the_partner_are_redacted(client: requests.Session) -> None:
    with Receiver(responder=_echo) as receiver:
        sub = subscribe(
            client,
            event_type="shipment.status.updated",
            target_url=receiver.url("/"),
            additional_headers={"X-Api-Key": API_KEY, "X-Plain": "plain-visible"},
            config={"auth": {"auth_type": "basic", "username": "partner", "password": PASSWORD}},
            secret_key=SIGNING_SECRET,
            retry_countdown_config=FAST,
            max_retries=0,
        )
        # the echo really carries every secret
        publish_event("shipment.status.updated", {"id": 7})
        (request,) = receiver.wait_for(1, timeout=20)
        assert len(_leaks(_echo(request).body.decode())) == 5
        # the delivery log keeps the excerpt without them
        (item,) = wait_until(
            lambda: [
                d
                for d in client.get("/whisperer/hook_events/").json()["results"]
                if d["status"] == "failed"
            ]
        )
        detail = client.get(f"/whisperer/hook_events/{item['uuid']}/").json()
        for text in (item["response_content"], detail["attempts"][0]["response_content"]):
            assert _leaks(text) == [] and "[redacted]" in text and "plain-visible" in text
        # nor do the answers of ping and resend
        ping = client.post(f"/whisperer/hooks/{sub['id']}/ping/")
        resend = client.post(f"/whisperer/hook_events/{item['uuid']}/retry/")
        for answer in (ping, resend):
            assert answer.status_code == 200, answer.text
            assert _leaks(answer.json()["response_content"]) == []
            assert "[redacted]" in answer.json()["response_content"]
