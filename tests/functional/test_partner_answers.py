"""Answers no HTTP client should have to read (DESIGN §9), from raw sockets on 127.0.0.1.

What a partner sees is one attempt; what the operator sees is its result: a
failed attempt naming the reason, or a delivery when the answer, however odd,
is a 2xx. Never an exception out of ``send``, never a wait past the deadline.
Short timeouts are settings (connect 0.5 s, read 1.0 s: a deadline of 1.5 s);
elapsed-time bounds leave several seconds of room for a loaded machine.
"""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
import requests

from oms_webhooks.delivery.request.sender import SendOptions, send
from oms_webhooks_local.publisher import publish_event
from tests.functional.helpers import FAST, Catcher, deliveries_of, subscribe, wait_until
from tests.raw_endpoints import (
    ENDS_BY,
    OK,
    SHORT,
    RawEndpoint,
    Script,
    answer,
    attempt,
    endless_body,
    interim,
    reset,
)

#: The error of an attempt cut at the deadline.
DEADLINE_ERROR = "no complete response within 1.5 s (connect + read timeout)"
#: The error of an attempt answered 101.
SWITCHED_ERROR = "101 Switching Protocols is not an answer to a delivery"


#: Answers that are not HTTP/1.x, and the words the attempt's error must contain.
NOT_HTTP = [
    pytest.param(answer(b"SSH-2.0-OpenSSH_9.6\r\n"), "SSH-2.0-OpenSSH_9.6", id="another-protocol"),
    pytest.param(answer(b"ok, got it"), "ok, got it", id="a-body-without-a-head"),
    pytest.param(
        answer(b"HTTP/1.1 abc Fine\r\nContent-Length: 2\r\n\r\nok"), "abc", id="status-not-a-number"
    ),
    pytest.param(answer(b"\x00\x01\x02\xff\xfe\r\n\r\n"), "connection error", id="binary-garbage"),
    pytest.param(
        answer(b"\x00\x00\x12\x04\x00\x00\x00\x00\x00"), "connection error", id="http2-frame"
    ),
    pytest.param(answer(b""), "connection", id="closed-without-a-byte"),
    pytest.param(reset, "connection reset", id="tcp-reset"),
    pytest.param(
        answer(b"HTTP/1.1 200 OK\r\nX-Big: " + b"a" * 70_000 + b"\r\nContent-Length: 2\r\n\r\nok"),
        "65536 bytes",
        id="a-70-kb-header-line",
    ),
    pytest.param(
        answer(
            b"HTTP/1.1 200 OK\r\n"
            + b"".join(b"X-H%d: v\r\n" % n for n in range(150))
            + b"Content-Length: 2\r\n\r\nok"
        ),
        "more than 100 headers",
        id="150-headers",
    ),
    pytest.param(
        answer(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 7\r\n\r\nok"),
        "Content-Length",
        id="two-content-lengths",
    ),
]


@pytest.mark.parametrize(("script", "reason"), NOT_HTTP)
def test_an_answer_that_is_not_http_is_a_failed_attempt_with_its_reason(
    script: Script, reason: str
) -> None:
    result, elapsed, accepted = attempt(script)
    assert not result.delivered and result.status_code is None
    assert result.error is not None and reason in result.error, result.error
    assert elapsed < ENDS_BY, elapsed
    assert accepted == 1


@pytest.mark.parametrize(
    "head",
    [
        pytest.param(b"this line is not a header\r\n", id="a-line-without-a-colon"),
        pytest.param(b"X-Binary: \xff\xfe\x00\x80\r\n", id="binary-header-value"),
        pytest.param(b"\xff\xfe: x\r\n", id="binary-header-name"),
        pytest.param(b"Content-Length: lots\r\n", id="content-length-not-a-number"),
    ],
)
def test_garbage_header_lines_around_a_200_do_not_hide_the_delivery(head: bytes) -> None:
    # GIVEN a 200 whose head has a line no RFC allows, then the body "ok" and the end
    result, elapsed, _ = attempt(answer(b"HTTP/1.1 200 OK\r\n" + head + b"\r\nok"))
    # THEN the partner's 200 is what counts: delivered, its body the excerpt
    assert result.delivered and result.status_code == 200 and result.error is None
    assert result.response_excerpt == "ok"
    assert elapsed < ENDS_BY, elapsed


def test_garbage_headers_on_interim_answers_are_skipped_with_them() -> None:
    script = interim(b"102 Processing", b"103 Early Hints", headers=b"no colon\r\n\xff\xfe: x\r\n")
    result, _, _ = attempt(script)
    assert result.delivered and result.status_code == 200 and result.response_excerpt == "ok"


def test_a_body_cut_short_keeps_its_status_and_says_so() -> None:
    # GIVEN a 200 promising 1000 bytes that sends nine and closes
    result, elapsed, _ = attempt(
        answer(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\nonly this")
    )
    # THEN the status is recorded, and the error says the body was cut
    assert result.status_code == 200
    assert result.error is not None and "reading the response body" in result.error
    assert "IncompleteRead" in result.error
    assert elapsed < ENDS_BY, elapsed


def test_a_broken_chunked_body_keeps_its_status_and_says_so() -> None:
    result, _, _ = attempt(
        answer(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n")
    )
    assert result.status_code == 200
    assert result.error is not None and "reading the response body" in result.error


def test_an_endless_body_is_read_up_to_the_cap_and_not_to_the_deadline() -> None:
    # GIVEN a 200 whose body never ends and a read cap of 64 KiB
    options = SendOptions(
        connect_timeout=0.5, read_timeout=1.0, allow_private=True, max_response_bytes=64 * 1024
    )
    result, elapsed, _ = attempt(endless_body, options)
    # THEN it is delivered when the cap is read (not cut at the deadline, not read forever)
    assert result.delivered and result.status_code == 200
    assert result.error is None, result.error
    assert result.response_excerpt == "x" * 4096
    assert elapsed < ENDS_BY, elapsed


def test_101_with_the_connection_left_open_is_a_failure_not_a_wait() -> None:
    # GIVEN a partner that switches to WebSocket, sends a frame and keeps the connection
    script = answer(
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"
        b"\x81\x05hello",
        close=False,
    )
    result, elapsed, _ = attempt(script)
    # THEN the attempt fails for the 101 (whether or not it waited for the deadline)
    assert not result.delivered and result.status_code == 101
    assert result.error in (
        "101 Switching Protocols is not an answer to a delivery",
        DEADLINE_ERROR,
    )
    assert elapsed < ENDS_BY, elapsed


def test_a_final_status_out_of_the_registry_is_a_failure_with_its_code() -> None:
    result, _, _ = attempt(answer(b"HTTP/1.1 999 Odd\r\nContent-Length: 2\r\n\r\nok"))
    assert not result.delivered and result.status_code == 999
    assert result.response_excerpt == "ok"


def test_the_ok_answer_used_above_is_delivered() -> None:
    # (the control: the same endpoint with a well-formed answer delivers)
    result, _, _ = attempt(answer(OK))
    assert result.delivered and result.status_code == 200 and result.error is None


API_KEY = "key-live-echo-7c1d"
PASSWORD = "pw-echo-5e2a"


def test_a_partner_echoing_our_request_as_its_answer_leaks_no_header_secret(
    client: requests.Session, catcher: Catcher
) -> None:
    # GIVEN a partner that answers with our request's head, as an echo server does
    # (the head is not HTTP: the request line stands where the status line should)
    basic = base64.b64encode(f"partner:{PASSWORD}".encode()).decode()
    echo = (
        f"POST /hook HTTP/1.1\r\nX-Api-Key: {API_KEY}\r\nAuthorization: Basic {basic}\r\n\r\n"
    ).encode()
    with RawEndpoint(answer(echo)) as endpoint:
        sub = subscribe(
            client,
            event_type="shipment.status.updated",
            target_url=endpoint.url("/hook"),
            additional_headers={"X-Api-Key": API_KEY},
            config={"auth": {"auth_type": "basic", "username": "partner", "password": PASSWORD}},
            retry_countdown_config=FAST,
            max_retries=0,
        )
        publish_event("shipment.status.updated", {"id": 1})
        # WHEN the attempt fails on that answer
        event = catcher.wait_for(
            "webhook.delivery.failed", lambda d: d["subscription"] == sub["id"], timeout=30
        )
    # THEN neither the operational event nor the delivery log carries a secret
    (delivery,) = deliveries_of(client, sub["id"])
    detail = client.get(f"/whisperer/hook_events/{delivery['uuid']}/").json()
    shown: list[Any] = [event, delivery, detail]
    text = json.dumps(shown)
    for secret in (API_KEY, PASSWORD, basic):
        assert secret not in text, secret
    assert event["detail"]["response_http_status"] is None
    assert event["detail"]["error"] == detail["attempts"][0]["error"]


def _wait_for_delivery(client: requests.Session, subscription_id: str) -> dict[str, Any]:
    found: list[dict[str, Any]] = wait_until(lambda: deliveries_of(client, subscription_id))
    return found[0]


def test_a_partner_answering_in_garbage_fails_the_delivery_and_is_retried(
    client: requests.Session,
) -> None:
    # GIVEN a partner that answers every attempt with bytes that are not HTTP
    with RawEndpoint(answer(b"\x00\xff garbage \xfe\r\n\r\n")) as endpoint:
        sub = subscribe(
            client,
            event_type="stock_location.created",
            target_url=endpoint.url("/"),
            retry_countdown_config=FAST,
            max_retries=1,
        )
        publish_event("stock_location.created", {"id": 1})

        # THEN the delivery fails after its retry, both attempts logged with the reason
        def failed() -> dict[str, Any] | None:
            found = _wait_for_delivery(client, sub["id"])
            return found if found["status"] == "failed" else None

        delivery = wait_until(failed, timeout=30)
        assert endpoint.accepted == 2
    detail = client.get(f"/whisperer/hook_events/{delivery['uuid']}/").json()
    errors = [a["error"] for a in detail["attempts"]]
    assert len(errors) == 2 and all(e and e.startswith("connection error") for e in errors), errors
    assert [a["response_http_status"] for a in detail["attempts"]] == [None, None]


def test_a_partner_echoing_our_request_line_leaks_no_query_into_the_operational_event(
    client: requests.Session, catcher: Catcher
) -> None:
    # GIVEN a target whose query holds a credential and a partner echoing our request line
    query_secret = "qs-s3cret-9d4e"
    echo = f"POST /hook?api_key={query_secret} HTTP/1.1\r\nHost: x\r\n\r\n".encode()
    with RawEndpoint(answer(echo)) as endpoint:
        sub = subscribe(
            client,
            event_type="shipment.status.updated",
            target_url=endpoint.url(f"/hook?api_key={query_secret}"),
            retry_countdown_config=FAST,
            max_retries=0,
        )
        publish_event("shipment.status.updated", {"id": 2})
        event = catcher.wait_for(
            "webhook.delivery.failed", lambda d: d["subscription"] == sub["id"], timeout=30
        )
    # THEN the operational event is without the query, as its target_url is
    assert query_secret not in json.dumps(event), event["detail"]["error"]
    # AND so is the attempt in the delivery log, whose error still quotes what came back
    (delivery,) = deliveries_of(client, sub["id"])
    detail = client.get(f"/whisperer/hook_events/{delivery['uuid']}/").json()
    assert query_secret not in json.dumps(detail["attempts"]), detail["attempts"]
    assert "POST /hook?[redacted] HTTP/1.1" in detail["attempts"][0]["error"]
    assert event["detail"]["error"] == detail["attempts"][0]["error"]


def test_a_response_body_echoing_our_request_line_keeps_no_query_in_the_excerpt() -> None:
    # GIVEN a partner whose error page quotes our request line, query value decoded too
    query = "api_key=qs-s3cret%2F9d4e"
    page = f"bad request: POST /hook?{query} HTTP/1.1 (key qs-s3cret/9d4e)".encode()
    head = f"HTTP/1.1 400 Bad Request\r\nContent-Length: {len(page)}\r\n\r\n".encode()
    with RawEndpoint(answer(head + page)) as endpoint:
        # WHEN an attempt to a target with that query gets it
        result = send(endpoint.url(f"/hook?{query}"), b"{}", {}, auth=None, options=SHORT)
    # THEN the excerpt keeps the answer but not the query or its value
    assert result.status_code == 400
    assert result.response_excerpt == (
        "bad request: POST /hook?[redacted] HTTP/1.1 (key [redacted])"
    ), result.response_excerpt


def test_one_send_keeps_every_secret_of_the_request_out_of_what_it_returns() -> None:
    # GIVEN a partner whose 400 page and status line echo the request's secrets: the
    # URL's query value, a credential header, basic auth and a signing secret
    signing = "whsec_c2lnbmluZy1zZWNyZXQtZWNobw=="
    echoed = f"q-{API_KEY} {API_KEY} {PASSWORD} {signing}"
    page = f"HTTP/1.1 400 {API_KEY}\r\nContent-Length: {len(echoed)}\r\n\r\n{echoed}".encode()
    with RawEndpoint(answer(page)) as endpoint:
        # WHEN one attempt is made with them (the sender alone, no pipeline around it)
        result = send(
            endpoint.url(f"/hook?token=q-{API_KEY}"),
            b"{}",
            {"X-Api-Key": API_KEY},
            auth=("partner", PASSWORD),
            options=SHORT,
            signing_secrets=[signing],
        )
    # THEN the answer is recorded, and neither its excerpt nor its error carries any of them
    assert result.status_code == 400 and not result.delivered
    returned = f"{result.response_excerpt} {result.error}"
    for secret in (f"q-{API_KEY}", API_KEY, PASSWORD, signing):
        assert secret not in returned, secret
    assert "[redacted]" in result.response_excerpt
