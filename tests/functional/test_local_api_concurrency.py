"""The local API serves requests at once, as several Lambda environments would (issue 12, item 6).

``oms-webhooks local`` runs as a process of its own with its API worker
processes; a partner endpoint that takes seconds to answer a ping, or clients
that send their request a byte at a time
(slowloris, raw sockets) must not delay another tenant's request.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.functional.local_process import (
    HTTP_TIMEOUT,
    RunningStack,
    running_stack,
    start_stack,
    stop_stack,
)
from tests.receivers import Receiver, Response

#: How long the slow partner takes to answer the ping, in seconds.
SLOW_SECONDS = 8.0
#: Seconds to wait for what needs new API workers started (imports on a loaded machine),
#: within pytest-timeout's 120 s per test.
WAIT = 30.0
#: A read deadline longer than any test.
PATIENCE = 600.0


@pytest.fixture
def running(tmp_path: Path) -> Iterator[RunningStack]:
    with running_stack(tmp_path / "state", api_workers=2) as stack:
        yield stack


def test_a_slow_ping_never_delays_another_tenants_request(running: RunningStack) -> None:
    other_token = running.cli("tokens", "create", "--tenant", "patient-tenant").splitlines()[-1]
    with Receiver(responder=lambda request: Response(status=200, delay=SLOW_SECONDS)) as slow:
        # GIVEN the dev tenant's subscription to a partner that answers after 8 s
        created = running.api().post(
            f"{running.api_url}/whisperer/hooks/",
            json={"event_type": "package.created", "target_url": slow.url("/slow")},
            timeout=HTTP_TIMEOUT,
        )
        assert created.status_code == 201, created.text
        ping_answer: list[requests.Response] = []

        def ping() -> None:
            ping_answer.append(
                running.api().post(
                    f"{running.api_url}/whisperer/hooks/{created.json()['id']}/ping/",
                    timeout=60,
                )
            )

        pinging = threading.Thread(target=ping)
        # WHEN it pings that partner, and the ping is under way
        pinging.start()
        slow.wait_for(1, timeout=30)
        # THEN another tenant's request is answered while the ping still waits
        others = running.api(other_token).get(
            f"{running.api_url}/whisperer/hooks/", timeout=HTTP_TIMEOUT
        )
        assert others.status_code == 200 and others.json() is not None
        assert not ping_answer, "the other tenant's request waited for the slow ping"
        pinging.join(60)
        assert ping_answer and ping_answer[0].status_code == 200, ping_answer
        assert ping_answer[0].json()["response_status"] == 200


def test_the_pool_grows_while_every_worker_holds_a_ping_that_logs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Each request logs ("request authorized") while its worker is busy; a log
    # line once read as the worker's "idle" report, so the pool never grew past
    # the accept queue's length and a request waited for a ping to end.
    monkeypatch.setenv("OMS_WEBHOOKS_READ_TIMEOUT_SECONDS", str(PATIENCE))
    running = start_stack(tmp_path / "state", api_workers=1)
    release = threading.Event()
    pings: list[requests.Response] = []
    pinging: list[threading.Thread] = []
    try:
        with Receiver(
            responder=lambda request: Response(status=200 if release.wait(PATIENCE) else 599)
        ) as held:
            created = running.api().post(
                f"{running.api_url}/whisperer/hooks/",
                json={"event_type": "package.created", "target_url": held.url("/held")},
                timeout=HTTP_TIMEOUT,
            )
            assert created.status_code == 201, created.text
            ping_url = f"{running.api_url}/whisperer/hooks/{created.json()['id']}/ping/"
            # GIVEN two pings held by their partner (the second needs a worker the pool starts)
            for _ in range(2):
                thread = threading.Thread(
                    target=lambda: pings.append(running.api().post(ping_url, timeout=PATIENCE))
                )
                thread.start()
                pinging.append(thread)
                held.wait_for(len(pinging), timeout=2 * WAIT)
            # WHEN another request arrives while both workers are busy
            answer = running.api().get(f"{running.api_url}/whisperer/hooks/", timeout=2 * WAIT)
            # THEN a third worker answers it, while the partner still holds both pings
            # (the bug: it waited for a worker to free, past the pings' 29 s 504)
            assert answer.status_code == 200, answer.text
            release.set()
            for thread in pinging:
                thread.join(60)
            # each ping answered: 200, or 504 where it was held past the integration
            # timeout on a loaded machine
            assert len(pings) == 2 and {p.status_code for p in pings} <= {200, 504}, pings
    finally:
        release.set()
        stop_stack(running)
        if running.proc.poll() is None:
            running.proc.kill()


def _slowloris(port: int) -> socket.socket:
    """A connection that starts a request and sends the rest a byte at a time (never all)."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    sock.sendall(b"GET /whisperer/hooks/ HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
    return sock


def test_slowloris_clients_cannot_starve_other_tenants(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A read deadline longer than the request's timeout: a worker held until
    # the deadline would make the patient request time out.
    monkeypatch.setenv("OMS_WEBHOOKS_LOCAL_API_READ_SECONDS", str(PATIENCE))
    with running_stack(tmp_path / "state", api_workers=2) as running:
        port = int(running.api_url.rsplit(":", 1)[1])
        slow: list[socket.socket] = []
        try:
            # GIVEN four clients that send their request a byte at a time (twice the workers)
            slow = [_slowloris(port) for _ in range(4)]
            dripping = threading.Event()

            def drip() -> None:
                while not dripping.wait(0.5):
                    for sock in slow:
                        sock.send(b"x")

            dripper = threading.Thread(target=drip, daemon=True)
            dripper.start()
            # WHEN another tenant sends a request
            answer = running.api().get(f"{running.api_url}/whisperer/hooks/", timeout=WAIT)
            # THEN it is answered, while the slow clients are still connected
            assert answer.status_code == 200, answer.text
            for sock in slow:
                sock.setblocking(False)
                with pytest.raises(BlockingIOError):
                    sock.recv(1)  # b"" would mean the server closed it (deadline passed)
            dripping.set()
            dripper.join(5)
        finally:
            for sock in slow:
                sock.close()
