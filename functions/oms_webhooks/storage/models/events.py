"""Deliveries table: kept events (an event's payload, stored once).

PynamoDB models; :mod:`oms_webhooks.storage.specs` binds them to their table names.
"""

from __future__ import annotations

from pynamodb.attributes import TTLAttribute, UnicodeAttribute
from pynamodb.indexes import GlobalSecondaryIndex, KeysOnlyProjection
from pynamodb.models import Model

from oms_webhooks import names


class KeptEventByTypeTime(GlobalSecondaryIndex["EventPayloadModel"]):
    """Sparse, keys-only index of kept events by type and time (DESIGN §10, recover).

    Hash ``kept_key`` = ``<event type>#<UTC day>#<shard>`` (the shard a hash of
    the event id, so a busy type spreads over :data:`KEPT_EVENT_SHARDS`
    partitions a day), range ``kept_sort`` = ``<stored ISO time>#<event id>``.
    """

    class Meta:
        index_name = "by-type-time"
        projection = KeysOnlyProjection()

    kept_key = UnicodeAttribute(hash_key=True)
    kept_sort = UnicodeAttribute(range_key=True)


class EventPayloadModel(Model):
    """An event's Detail, stored once per event (``pk`` = ``event#<id>``, ``sk`` = ``payload``).

    It is the kept event (DESIGN §10): written whether or not a subscription
    matched, kept two delivery retentions, found by type and time through
    :class:`KeptEventByTypeTime`.
    """

    class Meta:
        table_name = names.DEFAULT_DELIVERIES_TABLE
        settings_field = "deliveries_table"

    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True, default="payload")
    event_type = UnicodeAttribute()
    event_time = UnicodeAttribute()
    detail = UnicodeAttribute()
    kept_key = UnicodeAttribute(null=True)
    kept_sort = UnicodeAttribute(null=True)
    expires_at = TTLAttribute(null=True)

    by_type_time = KeptEventByTypeTime()
