"""Circuit breaker and slow-lane mark per target (DESIGN §9); plain module, no Lambda.

**Keys.** A *target* is the origin of ``target_url`` (scheme, host, port).
Connection failures (refused, reset, TLS, DNS) count per origin
(``target#conn#<origin>``); timeouts count per origin *and tenant*
(``target#time#<origin>#<tenant>``), because one multi-tenant receiver may
hang for one customer and not for others. A delivery is held when either of
its two keys is open.

**Counting** (:func:`report`). A timeout, refused, reset, TLS or DNS error
adds 1 to its key; any HTTP answer within the attempt's deadline (a 500 or a
401 too) resets both keys to 0 and closes them. At
``OMS_WEBHOOKS_BREAKER_THRESHOLD`` (5) consecutive failures the key opens
until now + ``OMS_WEBHOOKS_BREAKER_COOLDOWN_SECONDS`` (30); each failed probe
re-opens it for twice as long, up to :data:`MAX_COOLDOWN_SECONDS` (600).

**Holding and probing** (:func:`check`). While a key is open, no attempt is
made: the caller holds the message until ``until`` plus its *release slot*.
Each hold takes the next number of the key's ``held`` counter (one atomic
ADD; the counter starts again at 0 when the key opens or goes half-open),
and slot ``n`` comes back ``n // max_concurrent_per_host`` ×
:data:`RELEASE_STEP_SECONDS` after ``until`` (plus up to one step of
jitter): after a close, held deliveries are released at the per-target cap
(``OMS_WEBHOOKS_MAX_CONCURRENT_PER_HOST`` per second), not all at once. At
``until`` the first caller to win a conditional update (``open`` and
``until`` ≤ now → ``half_open`` with a probe lease of one attempt budget)
makes the probe; the others keep holding until the lease ends. A manual
resend counts as a probe (its failure re-opens an open key, doubled).

**Slow lane** (:func:`is_slow`, :func:`mark_slow`). An attempt still running
after ``OMS_WEBHOOKS_SLOW_ATTEMPT_SECONDS`` (0.25 s), or ending in a timeout,
marks its (origin, tenant) key slow for ``OMS_WEBHOOKS_SLOW_LANE_SECONDS``
(300 s): the main lane's dispatcher then moves that target's deliveries to
the slow queue, so that healthy deliveries never wait behind it. Within one
process the running attempt itself says so at once (:func:`in_flight`), so
a burst to a target that just went dead is cut off after 0.25 s, not after
the write and the cache. A quick answer on the slow lane lifts the mark.

**Storage and cost** (:class:`~oms_webhooks.storage.target_state.TargetStateStore`
from :func:`~oms_webhooks.storage.target_state.get_store`: the reads and the
conditional updates; the rules stay here, as pure functions of the read
:class:`~oms_webhooks.storage.target_state.State`). One small item per key in
the deliveries table, read through an in-memory
cache of ``OMS_WEBHOOKS_BREAKER_CACHE_SECONDS`` (1 s) per process, written
only on a failure, a slow attempt, or when the cached item shows something
to reset (a count above 0, an open key, a slow mark): a healthy target costs
one read per key per second per process and no write.
"""

from __future__ import annotations

import contextlib
import random
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal
from urllib.parse import urlsplit

from oms_webhooks.delivery.request.sender import AttemptResult
from oms_webhooks.delivery.request.url_guard import DEFAULT_PORTS
from oms_webhooks.settings import get_settings
from oms_webhooks.storage import target_state
from oms_webhooks.storage.target_state import State

__all__ = [
    "MAX_COOLDOWN_SECONDS",
    "MIN_HOLD_SECONDS",
    "Keys",
    "Verdict",
    "check",
    "circuit_view",
    "circuit_views",
    "cooldown_after_failure",
    "in_flight",
    "is_slow",
    "keys_for",
    "mark_slow",
    "note_fast",
    "release_slot",
    "report",
    "states",
]

#: The cool-down doubles on each failed probe up to this, in seconds (DESIGN §9).
MAX_COOLDOWN_SECONDS: Final = 600
#: A held message stays hidden at least this long, in seconds (DESIGN §9).
MIN_HOLD_SECONDS: Final = 5.0
#: One release slot's width, in seconds: the per-target cap of held deliveries come back
#: per step after ``until`` (DESIGN §9 "released at the per-target concurrency cap").
RELEASE_STEP_SECONDS: Final = 1.0
#: Jitter added to holds, in seconds (within one release step).
HOLD_JITTER_SECONDS: Final = RELEASE_STEP_SECONDS


@dataclass(frozen=True)
class Keys:
    """The two breaker keys of one delivery: ``conn`` (origin), ``timeout`` (origin, tenant)."""

    conn: str
    timeout: str

    def both(self) -> tuple[str, str]:
        """``(conn, timeout)``."""
        return self.conn, self.timeout


@dataclass(frozen=True)
class Verdict:
    """What :func:`check` decided.

    ``kind``: ``go`` (attempt), ``probe`` (attempt as the one probe of a
    half-open key), ``hold`` (no attempt: hide the message ``delay`` seconds).
    ``since``: Unix seconds the circuit first opened (for ``hold``).
    """

    kind: Literal["go", "probe", "hold"]
    delay: float = 0.0
    since: float | None = None


def origin(url: str) -> str:
    """``scheme://host:port`` of ``url`` (lowercase host, default port filled in)."""
    parts = urlsplit(url)
    port = parts.port or DEFAULT_PORTS.get(parts.scheme, 0)
    return f"{parts.scheme}://{(parts.hostname or '').lower()}:{port}"


def keys_for(target_url: str, tenant: str) -> Keys:
    """The breaker keys of a delivery to ``target_url`` for ``tenant``."""
    target = origin(target_url)
    return Keys(conn=f"target#conn#{target}", timeout=f"target#time#{target}#{tenant}")


# --- the state machine: pure ------------------------------------------------


def _is_open(state: State) -> bool:
    """Open or half-open: no attempt but a probe's."""
    return state.state in ("open", "half_open")


def cooldown_after_failure(
    counted: State, *, probe: bool, threshold: int, cooldown: float
) -> float | None:
    """Seconds to open a key for, given its state after a failure was counted; None: no change.

    A closed key opens for ``cooldown`` at ``threshold`` consecutive failures;
    a half-open key (its probe failed), or an open one whose failure was a
    probe (a manual resend), re-opens for twice its last cool-down, at most
    :data:`MAX_COOLDOWN_SECONDS` (DESIGN §9).
    """
    if counted.state == "closed" and counted.failures >= threshold:
        return float(cooldown)
    if _is_open(counted) and (probe or counted.state == "half_open"):
        base = counted.cooldown or cooldown
        return min(float(MAX_COOLDOWN_SECONDS), 2 * float(base))
    return None


def _stricter(key_states: Iterable[State]) -> dict[str, Any]:
    """The ``circuit`` view of a target's keys: open before half-open before closed."""
    found = list(key_states)
    for name in ("open", "half_open"):
        for state in found:
            if state.state == name:
                return {"state": name, "until": state.until}
    return {"state": "closed", "until": None}


# --- reading -------------------------------------------------------------------


def _read(keys: tuple[str, ...]) -> dict[str, State]:
    """The states of ``keys``, through the cache of ``OMS_WEBHOOKS_BREAKER_CACHE_SECONDS``."""
    return target_state.get_store().read(keys, max_age=get_settings().breaker_cache_seconds)


def states(keys: Sequence[str]) -> dict[str, State]:
    """The states of breaker ``keys`` (each once), through the cache (for readers: the API)."""
    return _read(tuple(dict.fromkeys(keys)))


# --- deciding --------------------------------------------------------------


def _jitter() -> float:
    return random.uniform(0.0, HOLD_JITTER_SECONDS)  # noqa: S311 - jitter, not security


def release_slot(key: str) -> int:
    """The next release slot of a delivery held by ``key`` (0, 1, ...; one atomic ADD).

    Slots count the holds since the key last opened or went half-open;
    ``slot // max_concurrent_per_host`` is the number of release steps after
    the key's ``until`` at which the delivery comes back.
    """
    counted = target_state.get_store().count_hold(key)
    return max(0, (counted.held if counted is not None else 1) - 1)


def _hold_delay(key: str, seconds_to_until: float) -> float:
    """Seconds to hold a delivery: to ``until`` (≥ 5 s), plus its release step and jitter."""
    steps = release_slot(key) // get_settings().max_concurrent_per_host
    return max(MIN_HOLD_SECONDS, seconds_to_until) + steps * RELEASE_STEP_SECONDS + _jitter()


def check(keys: Keys, *, probe_lease: float, now: float | None = None) -> Verdict:
    """Whether a delivery with ``keys`` may be attempted now (DESIGN §9).

    ``probe_lease``: seconds a won probe holds the half-open key (one attempt
    budget). Returns ``go``, ``probe`` or ``hold`` with its delay: until the
    open key's ``until`` (≥ 5 s), plus the delivery's release step
    (:func:`release_slot`) and up to :data:`HOLD_JITTER_SECONDS` of jitter.
    A hold costs one UpdateItem (its slot).
    """
    now = time.time() if now is None else now
    states = _read(keys.both())
    for key, state in states.items():
        if _is_open(state) and (state.until or 0) > now:
            delay = _hold_delay(key, (state.until or now) - now)
            return Verdict("hold", delay=delay, since=state.opened_at)
    for key, state in states.items():
        if not _is_open(state):
            continue
        won = target_state.get_store().start_probe(
            key, from_state=state.state, lease_until=int(now + probe_lease) + 1, now=int(now)
        )
        if won is None:
            # Another invocation probes: hold until its lease ends, in slot order.
            return Verdict("hold", delay=_hold_delay(key, probe_lease), since=state.opened_at)
        return Verdict("probe", since=state.opened_at)
    return Verdict("go")


def failure_kind(result: AttemptResult) -> Literal["connection", "timeout"] | None:
    """Which key a failed attempt counts against, or None (an HTTP answer, a refused URL)."""
    if result.status_code is not None:
        return None
    return result.failure


def report(
    keys: Keys, result: AttemptResult, *, probe: bool = False, now: float | None = None
) -> bool:
    """Count an attempt's result against its keys; True if a key opened now (a metric).

    ``probe``: the attempt was a probe (won by :func:`check`, or a manual
    resend): its failure re-opens an open or half-open key with the
    cool-down doubled.
    """
    now = time.time() if now is None else now
    settings = get_settings()
    kind = failure_kind(result)
    if kind is None:
        if result.status_code is None:
            return False  # refused by the URL guard, an invalid request: not the partner's doing
        for key, state in _read(keys.both()).items():
            if state.resettable:
                target_state.get_store().reset(key)
        return False
    key = keys.conn if kind == "connection" else keys.timeout
    counted = target_state.get_store().count_failure(key)
    if counted is None:  # pragma: no cover - unconditional
        return False
    cooldown = cooldown_after_failure(
        counted,
        probe=probe,
        threshold=settings.breaker_threshold,
        cooldown=settings.breaker_cooldown_seconds,
    )
    if cooldown is None:
        return False
    opened = target_state.get_store().open_key(
        key,
        from_state=counted.state,
        until=int(now + cooldown),
        cooldown=int(cooldown),
        now=int(now),
    )
    return opened is not None and counted.state == "closed"


# --- the slow lane -----------------------------------------------------------


#: Attempts in flight in this process, per (origin, tenant) key: their monotonic starts.
_in_flight: dict[str, list[float]] = {}
_in_flight_lock = threading.Lock()


@contextlib.contextmanager
def in_flight(keys: Keys) -> Iterator[None]:
    """Register an attempt in flight to the target for :func:`is_slow` (this process)."""
    started = time.monotonic()
    with _in_flight_lock:
        _in_flight.setdefault(keys.timeout, []).append(started)
    try:
        yield
    finally:
        with _in_flight_lock:
            starts = _in_flight.get(keys.timeout, [])
            with contextlib.suppress(ValueError):
                starts.remove(started)
            if not starts:
                _in_flight.pop(keys.timeout, None)


#: Monotonic time of the last quick answer per (origin, tenant) key, in this process.
_fast_at: dict[str, float] = {}
#: A quick answer vouches for its target for this long, in seconds.
KNOWN_FAST_SECONDS: Final = 60.0


def note_fast(keys: Keys) -> None:
    """Remember that the target just answered quickly (it may take parallel attempts)."""
    with _in_flight_lock:
        _fast_at[keys.timeout] = time.monotonic()


def _slow_in_flight(key: str, threshold: float) -> bool:
    """Whether this process's attempts say ``key`` is slow.

    True when an attempt to it has run longer than ``threshold`` seconds,
    or when one is in flight and no quick answer in the last
    :data:`KNOWN_FAST_SECONDS` vouches for it: an unknown target gets one
    main-lane attempt at a time until it shows it answers quickly, so a
    target that turns out dead holds one main-lane batch, not several.
    """
    now = time.monotonic()
    with _in_flight_lock:
        starts = _in_flight.get(key, ())
        if any(now - started > threshold for started in starts):
            return True
        return bool(starts) and now - _fast_at.get(key, -KNOWN_FAST_SECONDS) > KNOWN_FAST_SECONDS


def is_slow(keys: Keys, *, now: float | None = None) -> bool:
    """Whether the target is slow for this tenant (its deliveries take the slow lane).

    Slow: this process has an attempt to it running past
    ``slow_attempt_seconds`` (known at once, before any write), or one in
    flight while no recent quick answer vouches for it, or its item carries
    a slow mark (:func:`mark_slow`, seen by every process).
    """
    if _slow_in_flight(keys.timeout, get_settings().slow_attempt_seconds):
        return True
    now = time.time() if now is None else now
    state = _read((keys.timeout,))[keys.timeout]
    return (state.slow_until or 0) > now


def mark_slow(keys: Keys, *, now: float | None = None) -> None:
    """Mark the target slow for this tenant for ``OMS_WEBHOOKS_SLOW_LANE_SECONDS``."""
    now = time.time() if now is None else now
    ends = int(now + get_settings().slow_lane_seconds)
    target_state.get_store().set_slow(keys.timeout, until=ends)


def clear_slow(keys: Keys, *, now: float | None = None) -> None:
    """Lift the slow mark (a quick answer), writing only if the cached item shows one."""
    now = time.time() if now is None else now
    if (_read((keys.timeout,))[keys.timeout].slow_until or 0) > now:
        target_state.get_store().clear_slow(keys.timeout)


# --- what a tenant sees -----------------------------------------------------


def circuit_views(targets: Sequence[tuple[str, str]]) -> list[dict[str, Any]]:
    """The ``circuit`` field of subscriptions as their tenants see them, one per target.

    ``targets``: ``(target_url, tenant)`` pairs (a page of subscriptions).
    Each view is ``{"state": "closed" | "open" | "half_open", "until": Unix
    seconds or None}``: the stricter of the origin's and the (origin,
    tenant)'s keys. The keys of all of them are read together, through the
    cache (one BatchGetItem per 100 keys not cached).
    """
    pairs = [keys_for(target_url, tenant) for target_url, tenant in targets]
    found = states([key for pair in pairs for key in pair.both()])
    return [_stricter(found[key] for key in pair.both()) for pair in pairs]


def circuit_view(target_url: str, tenant: str) -> dict[str, Any]:
    """The ``circuit`` field of one subscription (:func:`circuit_views` of one target)."""
    return circuit_views([(target_url, tenant)])[0]
