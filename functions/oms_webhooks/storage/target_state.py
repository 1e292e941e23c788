"""Where the circuit breaker's items are kept: DynamoDB behind a small interface (DESIGN §9).

:mod:`oms_webhooks.delivery.retry.breaker` decides *which* transition
happens (the rules, pure functions of the read :class:`State`) and calls a
:class:`TargetStateStore`; :func:`get_store` returns the DynamoDB one
(:class:`DynamoTargetStateStore`), the only one today.

How it is kept: one small item per breaker key in the deliveries table
(:class:`~oms_webhooks.storage.models.TargetStateModel`, ``sk`` = ``state``),
expiring :data:`ITEM_TTL_SECONDS` after its last write. Reads go through an
in-memory cache per process (``max_age`` seconds); every write is one
UpdateItem that creates the item if needed and refreshes the cache with the
new state, and one whose condition fails forgets the cached item.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any, Final, Protocol

from pynamodb.exceptions import UpdateError

from oms_webhooks.storage.models import TargetStateModel
from oms_webhooks.storage.specs import bind_tables

__all__ = [
    "ITEM_TTL_SECONDS",
    "DynamoTargetStateStore",
    "State",
    "TargetStateStore",
    "clear_cache",
    "get_store",
]

#: Items expire (TTL) this long after their last write, in seconds.
ITEM_TTL_SECONDS: Final = 86_400
_SK: Final = "state"


@dataclass(frozen=True)
class State:
    """One key's item as read (Unix seconds; None = not set)."""

    failures: int = 0
    state: str = "closed"
    until: float | None = None
    cooldown: float | None = None
    opened_at: float | None = None
    slow_until: float | None = None
    held: int = 0

    @property
    def resettable(self) -> bool:
        """Whether an HTTP answer has something to reset (so it writes)."""
        return self.failures > 0 or self.state != "closed"


class TargetStateStore(Protocol):
    """What the circuit breaker needs from storage: reads and one write per transition.

    Every transition returns the key's new :class:`State` (or None when its
    condition failed: another caller moved the key first) and refreshes the
    cache that :meth:`read` serves.
    """

    def read(self, keys: tuple[str, ...], *, max_age: float) -> dict[str, State]:
        """``{key: State}`` for every key of ``keys``: cached if younger than ``max_age``
        seconds, the others in one BatchGetItem (≤ 100 keys a call).

        A key without an item reads as ``State()`` (closed, no failures).
        """
        ...

    def count_hold(self, key: str) -> State | None:
        """Add 1 to the key's ``held`` counter (one atomic ADD); the new state."""
        ...

    def start_probe(self, key: str, *, from_state: str, lease_until: int, now: int) -> State | None:
        """``from_state`` with ``until`` ≤ ``now`` → ``half_open`` until ``lease_until`` (Unix s).

        The ``held`` counter starts again at 0. None when another caller won.
        """
        ...

    def reset(self, key: str) -> None:
        """Close the key: no failures, no ``until``, ``opened_at`` or ``held``."""
        ...

    def count_failure(self, key: str) -> State | None:
        """Add 1 to the key's consecutive ``failures`` (one atomic ADD); the new state."""
        ...

    def open_key(
        self, key: str, *, from_state: str, until: int, cooldown: int, now: int
    ) -> State | None:
        """``from_state`` → ``open`` until ``until`` for ``cooldown`` s; None if the state moved.

        ``opened_at`` keeps the first opening of the outage (set to ``now`` only
        when absent); the ``held`` counter starts again at 0.
        """
        ...

    def set_slow(self, key: str, *, until: int) -> None:
        """Mark the key slow until ``until`` (Unix seconds)."""
        ...

    def clear_slow(self, key: str) -> None:
        """Remove the key's slow mark."""
        ...


# --- the cache (one per process, whatever the store) ---------------------------

_cache: dict[str, tuple[float, State]] = {}
_cache_lock = threading.Lock()


def clear_cache() -> None:
    """Forget every cached item (tests; a new process starts empty)."""
    with _cache_lock:
        _cache.clear()


def _cached(keys: tuple[str, ...], max_age: float) -> dict[str, State]:
    now = time.monotonic()
    found: dict[str, State] = {}
    with _cache_lock:
        for key in keys:
            cached = _cache.get(key)
            if cached is not None and now - cached[0] < max_age:
                found[key] = cached[1]
    return found


def _remember(key: str, state: State) -> State:
    with _cache_lock:
        _cache[key] = (time.monotonic(), state)
    return state


def _forget(key: str) -> None:
    with _cache_lock:
        _cache.pop(key, None)


# --- DynamoDB ------------------------------------------------------------------


def _state_of(item: TargetStateModel | None) -> State:
    if item is None:
        return State()

    def number(value: Any) -> float | None:
        return None if value is None else float(value)

    return State(
        failures=int(item.failures or 0),
        state=str(item.state or "closed"),
        until=number(item.until),
        cooldown=number(item.cooldown),
        opened_at=number(item.opened_at),
        slow_until=number(item.slow_until),
        held=int(item.held or 0),
    )


def _in_state(state: str) -> Any:
    """The condition "the key is in ``state``" (a new item has no ``state``: closed)."""
    if state == "closed":
        return TargetStateModel.state.does_not_exist() | (TargetStateModel.state == "closed")
    return TargetStateModel.state == state


class DynamoTargetStateStore:
    """:class:`TargetStateStore` on the deliveries table (PynamoDB), through the cache."""

    def read(self, keys: tuple[str, ...], *, max_age: float) -> dict[str, State]:
        found = _cached(keys, max_age)
        missing = [key for key in keys if key not in found]
        if missing:
            bind_tables()
            items = {i.pk: i for i in TargetStateModel.batch_get([(k, _SK) for k in missing])}
            for key in missing:
                found[key] = _remember(key, _state_of(items.get(key)))
        return found

    def _update(self, key: str, actions: list[Any], condition: Any = None) -> State | None:
        """UpdateItem on ``key`` (creating it); the new state, or None if ``condition`` failed."""
        bind_tables()
        item = TargetStateModel(key, _SK)
        expires = datetime.fromtimestamp(time.time() + ITEM_TTL_SECONDS, UTC)
        actions = [*actions, TargetStateModel.expires_at.set(expires)]
        try:
            item.update(actions=actions, condition=condition)
        except UpdateError as exc:
            if exc.cause_response_code == "ConditionalCheckFailedException":
                _forget(key)
                return None
            raise
        return _remember(key, _state_of(item))

    def count_hold(self, key: str) -> State | None:
        return self._update(key, [TargetStateModel.held.add(1)])

    def start_probe(self, key: str, *, from_state: str, lease_until: int, now: int) -> State | None:
        return self._update(
            key,
            [
                TargetStateModel.state.set("half_open"),
                TargetStateModel.until.set(lease_until),
                TargetStateModel.held.set(0),
            ],
            condition=(TargetStateModel.state == from_state) & (TargetStateModel.until <= now),
        )

    def reset(self, key: str) -> None:
        self._update(
            key,
            [
                TargetStateModel.failures.set(0),
                TargetStateModel.state.set("closed"),
                TargetStateModel.until.remove(),
                TargetStateModel.opened_at.remove(),
                TargetStateModel.held.remove(),
            ],
        )

    def count_failure(self, key: str) -> State | None:
        return self._update(key, [TargetStateModel.failures.add(1)])

    def open_key(
        self, key: str, *, from_state: str, until: int, cooldown: int, now: int
    ) -> State | None:
        return self._update(
            key,
            [
                TargetStateModel.state.set("open"),
                TargetStateModel.until.set(until),
                TargetStateModel.cooldown.set(cooldown),
                TargetStateModel.opened_at.set(TargetStateModel.opened_at | now),
                TargetStateModel.held.set(0),
            ],
            condition=_in_state(from_state),
        )

    def set_slow(self, key: str, *, until: int) -> None:
        self._update(key, [TargetStateModel.slow_until.set(until)])

    def clear_slow(self, key: str) -> None:
        self._update(key, [TargetStateModel.slow_until.remove()])


@lru_cache(maxsize=1)
def get_store() -> TargetStateStore:
    """The store the circuit breaker uses: DynamoDB (one per process)."""
    return DynamoTargetStateStore()
