"""One timer thread per process for the deadlines of every attempt in flight.

An attempt needs two alarms (DESIGN §9): its transport deadline
(:class:`oms_webhooks.delivery.request.transport.AttemptDeadline` shuts its
socket down) and the slow-attempt mark
(:func:`oms_webhooks.delivery.attempt.watched_attempt`). A
``threading.Timer`` each started and ended two threads per attempt (ten
records of a batch: twenty threads). :func:`schedule` puts them on one
daemon thread instead, started on first use (nothing at import), which
sleeps until the earliest alarm; a cancelled alarm never runs.

Callbacks run on that thread, one after another, so they must be quick and
never block (a socket shutdown is); one that does I/O hands it to a thread
of its own (:func:`watched_attempt` does for its DynamoDB write). An
exception in a callback is logged and the thread goes on.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
import time
from collections.abc import Callable

__all__ = ["Alarm", "schedule"]

logger = logging.getLogger(__name__)


class Alarm:
    """A scheduled callback; :meth:`cancel` stops it unless it has started."""

    __slots__ = ("_callback", "cancelled")

    def __init__(self, callback: Callable[[], None]) -> None:
        self._callback = callback
        self.cancelled = False

    def cancel(self) -> None:
        """Never run the callback (a no-op once it ran)."""
        self.cancelled = True

    def _run(self) -> None:
        if self.cancelled:
            return
        try:
            self._callback()
        except Exception:
            logger.exception("alarm callback failed")


_condition = threading.Condition()
#: ``(monotonic due time, sequence, alarm)``, the earliest first.
_due: list[tuple[float, int, Alarm]] = []
_sequence = itertools.count()
_thread: threading.Thread | None = None


def schedule(seconds: float, callback: Callable[[], None]) -> Alarm:
    """Run ``callback`` on the alarm thread in ``seconds`` (monotonic), unless cancelled."""
    global _thread
    alarm = Alarm(callback)
    with _condition:
        heapq.heappush(_due, (time.monotonic() + seconds, next(_sequence), alarm))
        if _thread is None or not _thread.is_alive():
            _thread = threading.Thread(target=_loop, name="attempt-alarms", daemon=True)
            _thread.start()
        _condition.notify()
    return alarm


def _loop() -> None:
    while True:
        with _condition:
            while _due and _due[0][2].cancelled:
                heapq.heappop(_due)  # cancelled alarms leave as soon as they come first
            if not _due:
                _condition.wait()
                continue
            wait = _due[0][0] - time.monotonic()
            if wait > 0:
                _condition.wait(wait)
                continue
            _, _, alarm = heapq.heappop(_due)
        alarm._run()
