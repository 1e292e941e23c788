"""Deliveries table: circuit breaker keys (DESIGN §9).

PynamoDB models; :mod:`oms_webhooks.storage.specs` binds them to their table names.
"""

from __future__ import annotations

from pynamodb.attributes import NumberAttribute, TTLAttribute, UnicodeAttribute
from pynamodb.models import Model

from oms_webhooks import names


class TargetStateModel(Model):
    """A circuit breaker key's state (DESIGN §9), in the deliveries table.

    ``pk`` = ``target#conn#<origin>`` (connection failures of an origin) or
    ``target#time#<origin>#<tenant>`` (timeouts and slowness of an origin for
    one tenant), ``sk`` = ``state``. ``failures``: consecutive failures;
    ``state``: ``closed``, ``open`` or ``half_open``; ``until``: Unix seconds
    the breaker stays open, or the probe's lease while half-open;
    ``cooldown``: seconds of the current (or last) opening; ``opened_at``:
    Unix seconds of the first opening of this outage; ``slow_until``: Unix
    seconds until which the target's deliveries go to the slow lane;
    ``held``: deliveries held since the key last opened or went half-open
    (their release slots after a close, DESIGN §9).
    """

    class Meta:
        table_name = names.DEFAULT_DELIVERIES_TABLE
        settings_field = "deliveries_table"

    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True, default="state")
    failures = NumberAttribute(default=0)
    state = UnicodeAttribute(default="closed")
    until = NumberAttribute(null=True)
    cooldown = NumberAttribute(null=True)
    opened_at = NumberAttribute(null=True)
    slow_until = NumberAttribute(null=True)
    held = NumberAttribute(null=True)
    expires_at = TTLAttribute(null=True)
