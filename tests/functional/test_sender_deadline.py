"""One deadline for the whole exchange, and interim answers (DESIGN §9), against raw sockets.

Short timeouts are settings (connect 0.5 s, read 1.0 s: a deadline of 1.5 s);
elapsed-time bounds leave several seconds of room for a loaded machine, and the
partners that must be cut at the deadline would take far longer than that bound.
"""

from __future__ import annotations

import socket
import threading
import time

from oms_webhooks.delivery.request.sender import SendOptions
from tests.raw_endpoints import (
    ENDS_BY,
    OK,
    attempt,
    dripping,
    endless_interim,
    interim,
    silent,
    slow,
)

#: A 200 whose head drips for 40 s at a byte every 0.1 s (long past :data:`ENDS_BY`).
LONG_HEAD = b"HTTP/1.1 200 OK\r\nX-Pad: " + b"p" * 360 + b"\r\nContent-Length: 2\r\n\r\nok"


def test_a_dripping_status_line_ends_at_the_deadline() -> None:
    # GIVEN an endpoint that sends its status line and headers a byte every 0.1 s
    # (each wait for data is far below the 1 s read timeout; the whole head takes 40 s)
    # WHEN an attempt is made
    result, elapsed, accepted = attempt(dripping(0.1, LONG_HEAD))
    # THEN it ends at connect + read timeout, failed, with the reason
    assert elapsed < ENDS_BY, elapsed
    assert not result.delivered and result.status_code is None
    assert result.error == "no complete response within 1.5 s (connect + read timeout)"
    assert accepted == 1


def test_a_silent_endpoint_is_a_read_timeout() -> None:
    result, elapsed, _ = attempt(silent)
    assert elapsed < ENDS_BY, elapsed
    assert result.status_code is None and result.error == "read timeout after 1.0 s"


def test_a_slow_answer_within_the_read_timeout_is_delivered() -> None:
    result, _, _ = attempt(slow(0.3))
    assert result.delivered and result.status_code == 200 and result.response_excerpt == "ok"


def test_102_three_times_then_200_is_delivered() -> None:
    result, _, accepted = attempt(interim(b"102 Processing", b"102 Processing", b"102 Processing"))
    assert result.delivered and result.status_code == 200 and result.error is None
    assert result.response_excerpt == "ok" and accepted == 1


def test_103_with_headers_then_200_is_delivered() -> None:
    script = interim(
        b"103 Early Hints",
        headers=b"Link: </style.css>; rel=preload\r\nX-Hint: 1\r\n",
        final=b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-Final: yes\r\n\r\nfinal",
    )
    result, _, _ = attempt(script)
    assert result.delivered and result.status_code == 200 and result.response_excerpt == "final"


def test_interim_then_a_failure_status_decides_the_failure() -> None:
    result, _, _ = attempt(
        interim(
            b"100 Continue",
            b"103 Early Hints",
            final=b"HTTP/1.1 503 Busy\r\nRetry-After: 7\r\nContent-Length: 4\r\n\r\nbusy",
        )
    )
    assert not result.delivered and result.status_code == 503
    assert result.retry_after == "7" and result.response_excerpt == "busy"


def test_101_is_a_failure() -> None:
    script = interim(
        final=b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
        b"Connection: Upgrade\r\n\r\n"
    )
    result, elapsed, _ = attempt(script)
    assert elapsed < ENDS_BY, elapsed
    assert not result.delivered and result.status_code == 101
    assert result.error == "101 Switching Protocols is not an answer to a delivery"


def test_ten_interim_answers_are_skipped_an_eleventh_fails() -> None:
    ten, _, _ = attempt(interim(*[b"102 Processing"] * 10))
    eleven, _, _ = attempt(interim(*[b"102 Processing"] * 11))
    assert ten.delivered and ten.status_code == 200
    assert not eleven.delivered and eleven.status_code is None
    assert eleven.error == "more than 10 interim (1xx) responses"


def test_an_endless_stream_of_slow_interim_answers_ends_at_the_deadline() -> None:
    # GIVEN interim answers every 0.4 s: more than 10 would take 4 s, the deadline is 1.5 s
    result, elapsed, _ = attempt(endless_interim(0.4))
    assert elapsed < ENDS_BY, elapsed
    assert not result.delivered and result.status_code is None
    assert result.error == "no complete response within 1.5 s (connect + read timeout)"


def test_an_endless_stream_of_fast_interim_answers_fails_at_the_eleventh() -> None:
    result, elapsed, _ = attempt(endless_interim(0.01))
    assert elapsed < ENDS_BY, elapsed
    assert result.status_code is None and result.error == "more than 10 interim (1xx) responses"


def test_a_dripping_body_ends_at_the_deadline_with_its_status() -> None:
    # GIVEN a 200 at once, then its body a byte every 0.05 s (all of it would take 200 s)
    def script(conn: socket.socket, stop: threading.Event) -> None:
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 4000\r\n\r\n")
        while not stop.wait(0.05):
            conn.sendall(b"x")

    result, elapsed, _ = attempt(script)
    assert elapsed < ENDS_BY, elapsed
    assert result.status_code == 200
    assert result.error == "no complete response within 1.5 s (connect + read timeout)"


def test_the_deadline_does_not_outlive_theattempt() -> None:
    # GIVEN a quick attempt WHEN the deadline's time passes afterwards
    result, _, _ = attempt(interim(final=OK))
    time.sleep(1.7)
    # THEN the result is untouched (the watchdog was cancelled)
    assert result.delivered and result.error is None


def test_the_deadline_watchdog_ends_with_theattempt() -> None:
    # GIVEN a 30 s deadline (connect 10 s + read 20 s) and the watchdogs running before
    options = SendOptions(connect_timeout=10.0, read_timeout=20.0, allow_private=True)
    before = {t for t in threading.enumerate() if isinstance(t, threading.Timer)}
    # WHEN a quick attempt is made
    result, _, _ = attempt(interim(final=OK), options)
    assert result.delivered and result.error is None

    # THEN its watchdog thread ends with it, not 30 s later (generous wait: loaded machine)
    def watchdogs_left() -> list[threading.Thread]:
        return [
            t
            for t in threading.enumerate()
            if isinstance(t, threading.Timer) and t not in before and t.is_alive()
        ]

    deadline = time.monotonic() + 10.0
    while watchdogs_left() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert watchdogs_left() == []
