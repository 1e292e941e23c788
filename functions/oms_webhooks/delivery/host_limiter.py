"""At most so many attempts at once per target host within one invocation's batch."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import urlsplit


class HostLimiter:
    """At most ``limit`` attempts at once per target ``host:port`` (one invocation's batch).

    Thread-safe; :meth:`acquire` is non-blocking: a busy host means the
    message comes back a second later without using up a retry.
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._lock = threading.Lock()
        self._busy: dict[str, int] = {}

    @staticmethod
    def key(url: str) -> str:
        """``host:port`` of ``url`` (default ports filled in)."""
        parts = urlsplit(url)
        port = parts.port or (443 if parts.scheme == "https" else 80)
        return f"{(parts.hostname or '').lower()}:{port}"

    @contextmanager
    def acquire(self, url: str) -> Iterator[bool]:
        """Yield True with a slot for ``url``'s host (released on exit), else False."""
        key = self.key(url)
        with self._lock:
            granted = self._busy.get(key, 0) < self.limit
            if granted:
                self._busy[key] = self._busy.get(key, 0) + 1
        try:
            yield granted
        finally:
            if granted:
                with self._lock:
                    self._busy[key] -= 1


#: Seconds a delivery waits when its host already has its share of attempts.
HOST_BUSY_DELAY_SECONDS = 1.0
