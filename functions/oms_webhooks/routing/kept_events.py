"""Kept events: find the events of one type stored within a time window (DESIGN §10).

Every OMS event's payload item (:class:`~oms_webhooks.storage.models.EventPayloadModel`)
is kept two delivery retentions, whether or not a subscription matched it,
and indexed by the sparse, keys-only GSI ``by-type-time``: hash
``<type>#<UTC day>#<shard>``, range ``<stored time>#<event id>``
(:func:`oms_webhooks.routing.events_store.kept_keys`). A window is read day by
day, the :data:`~oms_webhooks.routing.events_store.KEPT_EVENT_SHARDS` shards of
a day queried (:meth:`~oms_webhooks.routing.events_store.EventStore.kept_in`)
and merged in time order, so a reader sees events oldest first.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from oms_webhooks.routing.events_store import KEPT_EVENT_SHARDS, EventStore, get_store, kept_time


@dataclass(frozen=True, order=True)
class KeptEvent:
    """One kept event in the index: ``sort`` = ``<stored time>#<event id>``."""

    sort: str
    event_id: str


def _shard(
    store: EventStore, key: str, low: str, high: str, after: str | None
) -> Iterator[KeptEvent]:
    for sort, event_id in store.kept_in(key, low, high):
        if after is not None and sort <= after:
            continue
        yield KeptEvent(sort, event_id)


def sort_time(sort: str) -> datetime:
    """The stored time at the start of a :attr:`KeptEvent.sort` (a recovery's cursor)."""
    return datetime.strptime(sort.split("#", 1)[0], "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)


def find(
    event_type: str, since: datetime, until: datetime, *, after: str | None = None
) -> Iterator[KeptEvent]:
    """Kept events of ``event_type`` stored in ``[since, until]``, oldest first.

    Args:
        since, until: timezone-aware bounds (inclusive).
        after: a :attr:`KeptEvent.sort` already seen: start strictly after it
            (a resumed recovery's cursor).
    """
    store = get_store()
    since, until = since.astimezone(UTC), until.astimezone(UTC)
    low, high = kept_time(since), kept_time(until) + "#~"
    day = since.date()
    while day <= until.date():
        keys = [f"{event_type}#{day.isoformat()}#{shard}" for shard in range(KEPT_EVENT_SHARDS)]
        yield from heapq.merge(*(_shard(store, key, low, high, after) for key in keys))
        day += timedelta(days=1)
