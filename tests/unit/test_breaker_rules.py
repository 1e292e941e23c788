"""The circuit breaker's rules as pure functions of a key's state (DESIGN §9)."""

from __future__ import annotations

from oms_webhooks.delivery.retry.breaker import MAX_COOLDOWN_SECONDS, cooldown_after_failure
from oms_webhooks.storage.target_state import State


def test_a_closed_key_opens_at_the_threshold() -> None:
    # GIVEN a closed key that just counted its 4th, then its 5th failure
    # WHEN the threshold is 5 THEN only the 5th opens it, for the base cool-down
    assert cooldown_after_failure(State(failures=4), probe=False, threshold=5, cooldown=30) is None
    assert cooldown_after_failure(State(failures=5), probe=False, threshold=5, cooldown=30) == 30.0


def test_a_failed_probe_doubles_the_cool_down_up_to_the_maximum() -> None:
    half_open = State(failures=6, state="half_open", cooldown=30)
    assert cooldown_after_failure(half_open, probe=False, threshold=5, cooldown=30) == 60.0
    long = State(failures=9, state="half_open", cooldown=400)
    assert cooldown_after_failure(long, probe=False, threshold=5, cooldown=30) == float(
        MAX_COOLDOWN_SECONDS
    )


def test_an_open_key_reopens_only_for_a_probe() -> None:
    # GIVEN an open key (no cool-down recorded): a late failure leaves it, a manual resend doubles
    opened = State(failures=7, state="open")
    assert cooldown_after_failure(opened, probe=False, threshold=5, cooldown=30) is None
    assert cooldown_after_failure(opened, probe=True, threshold=5, cooldown=30) == 60.0
