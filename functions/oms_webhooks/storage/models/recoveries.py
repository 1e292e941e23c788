"""Deliveries table: recover requests and their progress (DESIGN §10).

PynamoDB models; :mod:`oms_webhooks.storage.specs` binds them to their table names.
"""

from __future__ import annotations

from pynamodb.attributes import (
    NumberAttribute,
    TTLAttribute,
    UnicodeAttribute,
    UTCDateTimeAttribute,
)
from pynamodb.models import Model

from oms_webhooks import names


class RecoveryModel(Model):
    """A recover request and its progress (``pk`` = ``recovery#<id>``, ``sk`` = ``recovery``).

    Shares the deliveries table; expires after the delivery retention.
    """

    class Meta:
        table_name = names.DEFAULT_DELIVERIES_TABLE
        settings_field = "deliveries_table"

    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True, default="recovery")
    recovery_id = UnicodeAttribute()
    tenant = UnicodeAttribute()
    subscription_id = UnicodeAttribute()
    since = UTCDateTimeAttribute()
    until = UTCDateTimeAttribute(null=True)
    window_end = UTCDateTimeAttribute()
    status = UnicodeAttribute()
    queued = NumberAttribute(default=0)
    skipped = NumberAttribute(default=0)
    cursor = UnicodeAttribute(null=True)
    created_date = UTCDateTimeAttribute()
    modified_date = UTCDateTimeAttribute()
    finished_date = UTCDateTimeAttribute(null=True)
    expires_at = TTLAttribute(null=True)
