"""The attempts' one alarm thread (:mod:`oms_webhooks.delivery.request.alarms`).

Waits are for conditions with generous deadlines (CI shares 2 cores); no
upper bound on when an alarm fires is asserted.
"""

from __future__ import annotations

import threading

from oms_webhooks.delivery.request import alarms


def _alarm_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "attempt-alarms"]


def test_alarms_fire_in_due_order_on_one_thread_and_cancelled_ones_never() -> None:
    fired: list[tuple[str, str]] = []
    done = threading.Event()

    def note(name: str) -> None:
        fired.append((name, threading.current_thread().name))
        if name == "last":
            done.set()

    # GIVEN many alarms at once, some cancelled (as attempts that answered in time)
    # ("last" is scheduled first, 1 s out: the order holds unless this thread
    # stalls for most of a second between the calls; the same for the cancels)
    alarms.schedule(1.0, lambda: note("last"))
    alarms.schedule(0.0, lambda: note("first"))
    cancelled = [alarms.schedule(0.9, lambda: note("cancelled")) for _ in range(50)]
    for alarm in cancelled:
        alarm.cancel()
    alarms.schedule(0.05, lambda: note("second"))
    # WHEN they come due
    assert done.wait(30)
    # THEN the live ones ran in due order, all on the one alarm thread; no cancelled one ran
    assert [name for name, _ in fired] == ["first", "second", "last"]
    assert {thread for _, thread in fired} == {"attempt-alarms"}
    assert len(_alarm_threads()) == 1


def test_a_failing_callback_does_not_stop_the_alarm_thread() -> None:
    ran = threading.Event()

    def boom() -> None:
        raise RuntimeError("boom")

    alarms.schedule(0.0, boom)
    alarms.schedule(0.01, ran.set)
    assert ran.wait(30)
