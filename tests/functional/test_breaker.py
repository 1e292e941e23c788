"""The circuit breaker's rules (DESIGN §9) against the local stack's DynamoDB (moto over HTTP).

Each test uses its own target origin and tenant, so keys never collide; the
cache is off (``OMS_WEBHOOKS_BREAKER_CACHE_SECONDS=0``) so every read is real.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from oms_webhooks.delivery.request.sender import AttemptResult
from oms_webhooks.delivery.retry import breaker
from oms_webhooks.settings import get_settings
from oms_webhooks.storage.models import TargetStateModel
from tests.functional.helpers import fresh_settings

NOW = 1_800_000_000.0


@pytest.fixture(autouse=True)
def _settings(monkeypatch: pytest.MonkeyPatch, stack: Any) -> Iterator[None]:
    with fresh_settings(
        monkeypatch,
        BREAKER_CACHE_SECONDS="0",
        BREAKER_THRESHOLD="3",
        BREAKER_COOLDOWN_SECONDS="30",
        MAX_CONCURRENT_PER_HOST="4",
    ):
        yield


@pytest.fixture
def keys() -> breaker.Keys:
    return breaker.keys_for(f"https://{uuid.uuid4().hex[:12]}.example:8443/hook", "tenant-a")


def _result(status: int | None = None, failure: Any = None) -> AttemptResult:
    return AttemptResult(
        at=datetime.now(UTC), status_code=status, error=None, response_time_ms=5, failure=failure
    )


REFUSED = _result(failure="connection")
TIMEOUT = _result(failure="timeout")


def _item(key: str) -> TargetStateModel:
    return TargetStateModel.get(key, "state", consistent_read=True)


def test_keys_are_the_origin_and_the_origin_with_the_tenant() -> None:
    keys = breaker.keys_for("HTTPS://Partner.Example/a?b=1", "t1")
    assert keys.conn == "target#conn#https://partner.example:443"
    assert keys.timeout == "target#time#https://partner.example:443#t1"


def test_connection_failures_open_the_origin_at_the_threshold(keys: breaker.Keys) -> None:
    # GIVEN two refused connections: below the threshold of 3
    assert not breaker.report(keys, REFUSED, now=NOW)
    assert not breaker.report(keys, REFUSED, now=NOW)
    assert breaker.check(keys, probe_lease=20, now=NOW).kind == "go"
    # WHEN a third fails THEN the origin's key opens for the cool-down (a metric counts it)
    assert breaker.report(keys, REFUSED, now=NOW)
    item = _item(keys.conn)
    assert item.state == "open" and item.until == NOW + 30 and item.failures == 3
    verdict = breaker.check(keys, probe_lease=20, now=NOW + 1)
    assert verdict.kind == "hold" and 29 + breaker.MIN_HOLD_SECONDS > verdict.delay >= 29
    assert verdict.since == NOW
    # AND another tenant's deliveries to the same origin are held too
    other = breaker.keys_for("https://" + keys.conn.split("//")[1].split("#")[0], "tenant-b")
    assert breaker.check(other, probe_lease=20, now=NOW + 1).kind == "hold"


def test_timeouts_count_per_origin_and_tenant(keys: breaker.Keys) -> None:
    for _ in range(3):
        breaker.report(keys, TIMEOUT, now=NOW)
    assert breaker.check(keys, probe_lease=20, now=NOW + 1).kind == "hold"
    other = breaker.Keys(conn=keys.conn, timeout=keys.timeout.replace("tenant-a", "tenant-b"))
    assert breaker.check(other, probe_lease=20, now=NOW + 1).kind == "go"
    assert breaker.circuit_view("https://x.example", "nobody")["state"] == "closed"


def test_any_http_answer_resets_the_count(keys: breaker.Keys) -> None:
    breaker.report(keys, TIMEOUT, now=NOW)
    breaker.report(keys, TIMEOUT, now=NOW)
    breaker.report(keys, _result(status=500), now=NOW)
    assert _item(keys.timeout).failures == 0
    breaker.report(keys, TIMEOUT, now=NOW)
    breaker.report(keys, TIMEOUT, now=NOW)
    assert breaker.check(keys, probe_lease=20, now=NOW).kind == "go"


def test_a_healthy_target_writes_nothing(keys: breaker.Keys) -> None:
    breaker.report(keys, _result(status=200), now=NOW)
    breaker.report(keys, _result(status=401), now=NOW)
    with pytest.raises(TargetStateModel.DoesNotExist):
        _item(keys.conn)
    with pytest.raises(TargetStateModel.DoesNotExist):
        _item(keys.timeout)


def test_one_probe_wins_after_the_cool_down_and_a_failed_probe_doubles_it(
    keys: breaker.Keys,
) -> None:
    for _ in range(3):
        breaker.report(keys, REFUSED, now=NOW)
    # WHEN the cool-down is over, two dispatchers look at once
    first = breaker.check(keys, probe_lease=20, now=NOW + 31)
    second = breaker.check(keys, probe_lease=20, now=NOW + 31)
    # THEN one probes, the other holds until the probe's lease ends
    assert first.kind == "probe" and second.kind == "hold"
    assert _item(keys.conn).state == "half_open"
    assert breaker.circuit_view("https://" + keys.conn.split("//")[1], "x")["state"] == "half_open"
    # WHEN the probe fails THEN the key re-opens for twice as long (not counted as a new open)
    assert not breaker.report(keys, REFUSED, probe=True, now=NOW + 32)
    item = _item(keys.conn)
    assert item.state == "open" and item.cooldown == 60 and item.until == NOW + 32 + 60
    # AND doubling stops at 600 s
    when = NOW + 100
    for _ in range(6):
        when = float(_item(keys.conn).until) + 1
        assert breaker.check(keys, probe_lease=20, now=when).kind == "probe"
        breaker.report(keys, REFUSED, probe=True, now=when)
    assert _item(keys.conn).cooldown == 600


def test_a_probe_that_answers_closes_the_circuit(keys: breaker.Keys) -> None:
    for _ in range(3):
        breaker.report(keys, TIMEOUT, now=NOW)
    assert breaker.check(keys, probe_lease=20, now=NOW + 31).kind == "probe"
    breaker.report(keys, _result(status=503), probe=True, now=NOW + 32)
    item = _item(keys.timeout)
    assert item.state == "closed" and item.failures == 0 and item.opened_at is None
    assert breaker.check(keys, probe_lease=20, now=NOW + 33).kind == "go"


def test_a_probe_that_died_lets_another_probe_after_its_lease(keys: breaker.Keys) -> None:
    for _ in range(3):
        breaker.report(keys, REFUSED, now=NOW)
    assert breaker.check(keys, probe_lease=20, now=NOW + 31).kind == "probe"
    assert breaker.check(keys, probe_lease=20, now=NOW + 40).kind == "hold"
    assert breaker.check(keys, probe_lease=20, now=NOW + 60).kind == "probe"


def test_a_failed_manual_resend_re_opens_an_open_circuit(keys: breaker.Keys) -> None:
    for _ in range(3):
        breaker.report(keys, REFUSED, now=NOW)
    breaker.report(keys, REFUSED, probe=True, now=NOW + 5)
    item = _item(keys.conn)
    assert item.state == "open" and item.cooldown == 60 and item.until == NOW + 5 + 60


def test_a_refused_url_counts_nothing(keys: breaker.Keys) -> None:
    for _ in range(5):
        breaker.report(keys, _result(), now=NOW)
    with pytest.raises(TargetStateModel.DoesNotExist):
        _item(keys.conn)


def test_slow_mark_set_and_lifted(keys: breaker.Keys) -> None:
    assert not breaker.is_slow(keys, now=NOW)
    breaker.mark_slow(keys, now=NOW)
    assert breaker.is_slow(keys, now=NOW + 10)
    assert not breaker.is_slow(keys, now=NOW + get_settings().slow_lane_seconds + 1)
    breaker.clear_slow(keys, now=NOW + 10)
    assert not breaker.is_slow(keys, now=NOW + 10)


def _release_steps(keys: breaker.Keys, holds: int, now: float, until: float) -> list[int]:
    """Hold ``holds`` deliveries at ``now``; the whole release steps after ``until`` of each."""
    steps = []
    for _ in range(holds):
        verdict = breaker.check(keys, probe_lease=20, now=now)
        assert verdict.kind == "hold"
        steps.append(int((now + verdict.delay - until) // breaker.RELEASE_STEP_SECONDS))
    return steps


def test_held_deliveries_are_released_at_the_per_target_cap_after_a_close(
    keys: breaker.Keys,
) -> None:
    # GIVEN an open circuit (until NOW + 30) and a per-target cap of 4
    for _ in range(3):
        breaker.report(keys, TIMEOUT, now=NOW)
    # WHEN 10 deliveries are held while it is open
    steps = _release_steps(keys, 10, now=NOW + 1, until=NOW + 30)
    # THEN they come back 4 per step after `until`, not all at once
    assert steps == [0, 0, 0, 0, 1, 1, 1, 1, 2, 2]
    # WHEN a probe wins, deliveries held meanwhile are counted afresh from the lease's end
    assert breaker.check(keys, probe_lease=20, now=NOW + 31).kind == "probe"
    assert _item(keys.timeout).held == 0
    lease_ends = float(_item(keys.timeout).until)
    assert _release_steps(keys, 5, now=NOW + 32, until=lease_ends) == [0, 0, 0, 0, 1]
    # AND the probe's answer closes the circuit and forgets the count
    breaker.report(keys, _result(status=200), probe=True, now=NOW + 33)
    assert _item(keys.timeout).held is None
    assert breaker.check(keys, probe_lease=20, now=NOW + 34).kind == "go"
    # AND a new opening starts counting at 0 again
    for _ in range(3):
        breaker.report(keys, TIMEOUT, now=NOW + 40)
    assert _release_steps(keys, 1, now=NOW + 41, until=NOW + 70) == [0]
