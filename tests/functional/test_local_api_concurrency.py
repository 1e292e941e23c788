"""The local API serves requests at once, as several Lambda environments would (issue 12, item 6).

``oms-webhooks local`` runs as a process of its own with its API worker
processes; a partner endpoint that takes seconds to answer a ping must not
delay another tenant's request.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.functional.local_process import HTTP_TIMEOUT, RunningStack, start_stack, stop_stack
from tests.receivers import Receiver, Response

#: How long the slow partner takes to answer the ping, in seconds.
SLOW_SECONDS = 8.0


@pytest.fixture
def running(tmp_path: Path) -> Iterator[RunningStack]:
    stack = start_stack(tmp_path / "state", api_workers=2)
    try:
        yield stack
    finally:
        if stack.proc.poll() is None:
            stop_stack(stack)
        if stack.proc.poll() is None:
            stack.proc.kill()


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
