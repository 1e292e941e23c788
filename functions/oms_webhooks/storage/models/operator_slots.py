"""Deliveries table: a tenant's slots for pings and manual resends.

PynamoDB models; :mod:`oms_webhooks.storage.specs` binds them to their table names.
"""

from __future__ import annotations

from pynamodb.attributes import NumberAttribute, TTLAttribute, UnicodeAttribute
from pynamodb.models import Model

from oms_webhooks import names


class OperatorSlotModel(Model):
    """One of a tenant's slots for pings and manual resends (``oms_webhooks.api.operator_limits``).

    ``pk`` = ``opslot#<tenant>``, ``sk`` = ``slot#<n>``; ``lease_until``: Unix
    time in microseconds the slot is taken until (0 = free; the low digits make
    each request's lease its own).
    """

    class Meta:
        table_name = names.DEFAULT_DELIVERIES_TABLE
        settings_field = "deliveries_table"

    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)
    lease_until = NumberAttribute(default=0)
    expires_at = TTLAttribute(null=True)
