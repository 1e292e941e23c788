"""Where events are kept: payload items and their kept-events index, behind a small interface.

The router stores every OMS event's Detail once (:meth:`EventStore.put_payload`);
the dispatcher, resend, recover and replay read it back
(:meth:`EventStore.get_payload`); recover walks the kept-events index
(:meth:`EventStore.kept_in`, through :mod:`oms_webhooks.routing.kept_events`).
:func:`get_store` returns the DynamoDB one (:class:`DynamoEventStore`), the
only one today.

How it is kept (DESIGN §10): the payload item (pk ``event#<event id>``, sk
``payload``) lives in the deliveries table two delivery retentions, whether or
not a subscription matched, and is indexed by the sparse, keys-only GSI
``by-type-time``: hash ``<type>#<UTC day>#<shard>`` (:func:`kept_keys`),
range ``<stored time>#<event id>``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from datetime import UTC, datetime
from functools import lru_cache
from typing import Protocol

from pynamodb.exceptions import PutError

from oms_webhooks.delivery.store import expires_at
from oms_webhooks.storage.models import EventPayloadModel
from oms_webhooks.storage.specs import bind_tables

#: Shards of one event type's day in the kept-events index (DESIGN §10): each
#: takes ~1,000 writes/s (a DynamoDB partition), so a type may reach ~8,000 events/s.
KEPT_EVENT_SHARDS = 8


def kept_keys(event_type: str, event_id: str, stored: datetime) -> tuple[str, str]:
    """``(kept_key, kept_sort)`` of an event stored at ``stored`` (the kept-events index)."""
    shard = int(hashlib.sha256(event_id.encode()).hexdigest()[:8], 16) % KEPT_EVENT_SHARDS
    day = stored.astimezone(UTC).strftime("%Y-%m-%d")
    return f"{event_type}#{day}#{shard}", f"{kept_time(stored)}#{event_id}"


def kept_time(moment: datetime) -> str:
    """The sortable UTC time of the kept-events index (microseconds, fixed width)."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class EventStore(Protocol):
    """What routing and delivery need from the kept events (DESIGN §10)."""

    def put_payload(self, event_id: str, event_type: str, event_time: str, detail: str) -> None:
        """Store an event's Detail (JSON text) once, stamped with the time it is stored.

        The first write wins (a conditional put; a second is a no-op), so a
        router retry of the same event keeps the first stored time, the
        event's place in the kept-events index.
        """
        ...

    def get_payload(self, event_id: str) -> EventPayloadModel | None:
        """The stored payload of ``event_id`` (strongly consistent), or None if it
        expired or never existed."""
        ...

    def kept_in(self, kept_key: str, low: str, high: str) -> Iterator[tuple[str, str]]:
        """``(kept_sort, event id)`` of one index key's events with ``low <= kept_sort <= high``,
        in ``kept_sort`` order (a paginated Query of the keys-only index)."""
        ...


class DynamoEventStore:
    """:class:`EventStore` on the ``deliveries`` table (PynamoDB)."""

    def put_payload(self, event_id: str, event_type: str, event_time: str, detail: str) -> None:
        bind_tables()
        stored = datetime.now(UTC)
        kept_key, kept_sort = kept_keys(event_type, event_id, stored)
        item = EventPayloadModel(
            f"event#{event_id}",
            "payload",
            event_type=event_type,
            event_time=event_time,
            detail=detail,
            kept_key=kept_key,
            kept_sort=kept_sort,
            expires_at=expires_at(2),
        )
        try:
            item.save(condition=EventPayloadModel.pk.does_not_exist())
        except PutError as exc:
            if exc.cause_response_code != "ConditionalCheckFailedException":
                raise

    def get_payload(self, event_id: str) -> EventPayloadModel | None:
        bind_tables()
        try:
            return EventPayloadModel.get(f"event#{event_id}", "payload", consistent_read=True)
        except EventPayloadModel.DoesNotExist:
            return None

    def kept_in(self, kept_key: str, low: str, high: str) -> Iterator[tuple[str, str]]:
        bind_tables()
        for item in EventPayloadModel.by_type_time.query(
            kept_key, EventPayloadModel.kept_sort.between(low, high)
        ):
            yield str(item.kept_sort), item.pk.removeprefix("event#")


@lru_cache(maxsize=1)
def get_store() -> EventStore:
    """The store of kept events: DynamoDB (one per process)."""
    return DynamoEventStore()
