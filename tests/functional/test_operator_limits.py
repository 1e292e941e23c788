"""Pings and manual resends are limited per tenant (DESIGN §9, operators' actions).

One tenant's pings to a slow partner must not hold the API for everybody:
beyond ``OMS_WEBHOOKS_MAX_OPERATOR_SENDS_PER_TENANT`` in flight (over every
API execution environment), the API answers 429 with ``Retry-After`` and
makes no attempt. ``oms-webhooks local`` runs as its own process with three
API worker processes (several Lambda environments); the partner is a real
receiver on 127.0.0.1 answering after a few seconds. The assertions wait for
conditions; nothing is timed.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.functional.helpers import wait_until
from tests.functional.local_process import HTTP_TIMEOUT, RunningStack, running_stack
from tests.receivers import Receiver, Response

#: The partner answers after this many seconds (long enough to overlap, short for the suite).
SLOW_SECONDS = 4.0


@pytest.fixture
def running(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[RunningStack]:
    monkeypatch.setenv("OMS_WEBHOOKS_MAX_OPERATOR_SENDS_PER_TENANT", "1")
    with running_stack(tmp_path / "state", api_workers=3) as stack:
        yield stack


def _subscribe(
    running: RunningStack,
    session: requests.Session,
    url: str,
    event_type: str = "package.created",
) -> str:
    created = session.post(
        f"{running.api_url}/whisperer/hooks/",
        json={"event_type": event_type, "target_url": url},
        timeout=HTTP_TIMEOUT,
    )
    assert created.status_code == 201, created.text
    return str(created.json()["id"])


def _delivered(running: RunningStack, session: requests.Session, fast: Receiver) -> str:
    """The id of a delivery of ``package.status.shipped`` to ``fast`` (delivered)."""
    _subscribe(running, session, fast.url("/done"), "package.status.shipped")
    running.cli("publish", "package.status.shipped", "--data", '{"id": 1}')
    fast.wait_for(1, timeout=60)
    listed = wait_until(
        lambda: session.get(
            f"{running.api_url}/whisperer/hook_events/?delivered=true", timeout=HTTP_TIMEOUT
        ).json()["results"],
        timeout=60,
    )
    return str(listed[0]["uuid"])


def test_a_tenant_gets_429_beyond_its_pings_in_flight_and_others_are_unaffected(
    running: RunningStack,
) -> None:
    other = running.api(running.cli("tokens", "create", "--tenant", "other").splitlines()[-1])
    mine = running.api()
    base = f"{running.api_url}/whisperer"
    with (
        Receiver(responder=lambda request: Response(status=200, delay=SLOW_SECONDS)) as slow,
        Receiver() as fast,
    ):
        # GIVEN a limit of one ping or resend in flight per tenant, a slow partner,
        # and a delivery of the tenant's that a resend could send again
        delivery = _delivered(running, mine, fast)
        sub = _subscribe(running, mine, slow.url("/mine"))
        other_sub = _subscribe(running, other, slow.url("/other"))
        answers: list[Any] = []

        def ping() -> None:
            answers.append(mine.post(f"{base}/hooks/{sub}/ping/", timeout=60))

        first = threading.Thread(target=ping)
        # WHEN a ping is under way and the same tenant pings again
        first.start()
        slow.wait_for(1, timeout=30)
        second = mine.post(f"{base}/hooks/{sub}/ping/", timeout=60)
        # THEN the second is refused: 429 with Retry-After, and no attempt is made
        assert second.status_code == 429, second.text
        assert second.json()["code"] == "too_many_requests"
        assert int(second.headers["Retry-After"]) >= 1
        # AND a manual resend shares the same slots (no attempt either)
        resent = mine.post(
            f"{base}/hook_events/{delivery}/retry/", json={"force": True}, timeout=60
        )
        assert resent.status_code == 429, resent.text
        assert int(resent.headers["Retry-After"]) >= 1
        # AND a resend of a delivery that does not exist is a 404 even then:
        # the delivery is looked up before a slot is taken
        unknown = mine.post(f"{base}/hook_events/{uuid.uuid4().hex}/retry/", timeout=60)
        assert unknown.status_code == 404, unknown.text
        # AND another tenant's ping is served meanwhile
        assert other.post(f"{base}/hooks/{other_sub}/ping/", timeout=60).status_code == 200
        first.join(60)
        assert [answer.status_code for answer in answers] == [200]
        assert [r.path for r in slow.requests].count("/mine") == 1
        assert [r.path for r in fast.requests] == ["/done"]
        # AND once the first ping is done, the tenant may ping again
        again = wait_until(
            lambda: (
                (r := mine.post(f"{base}/hooks/{sub}/ping/", timeout=60)).status_code == 200 and r
            ),
            timeout=30,
        )
        assert again.json()["delivered"] is True
