"""Subscriptions table: subscriptions, their uniqueness guards, health and per-tenant counters.

PynamoDB models; :mod:`oms_webhooks.storage.specs` binds them to their table names.
"""

from __future__ import annotations

from typing import Any

from pynamodb.attributes import (
    BooleanAttribute,
    JSONAttribute,
    MapAttribute,
    NumberAttribute,
    UnicodeAttribute,
    UTCDateTimeAttribute,
    VersionAttribute,
)
from pynamodb.indexes import AllProjection, GlobalSecondaryIndex
from pynamodb.models import Model

from oms_webhooks import names


class SubscriptionByEventType(GlobalSecondaryIndex["SubscriptionModel"]):
    """Sparse fan-out index: active subscriptions of one event type, all tenants."""

    class Meta:
        index_name = "by-event-type"
        projection = AllProjection()

    fanout_event_type = UnicodeAttribute(hash_key=True)
    id = UnicodeAttribute(range_key=True)


class BasicAuthAttribute(MapAttribute[str, Any]):
    """``config.auth``: HTTP Basic credentials; the password is stored sealed."""

    auth_type = UnicodeAttribute(default="basic")
    username = UnicodeAttribute()
    sealed_password = UnicodeAttribute(null=True)


class SubscriptionsTableItem(Model):
    """An item of the subscriptions table: hash ``tenant``, range ``id`` (each kind below).

    A subscription's hash is its tenant; its guards', health's and counter's
    are ``<tenant>#<kind>``, so every item names its tenant in its key.
    """

    class Meta:
        table_name = names.DEFAULT_SUBSCRIPTIONS_TABLE
        settings_field = "subscriptions_table"

    tenant = UnicodeAttribute(hash_key=True)
    id = UnicodeAttribute(range_key=True)


class SubscriptionModel(SubscriptionsTableItem):
    """A tenant's subscription of one target URL to one event type."""

    event_type = UnicodeAttribute()
    fanout_event_type = UnicodeAttribute(null=True)
    target_url = UnicodeAttribute()
    retry_countdown_config = JSONAttribute()
    max_retries = NumberAttribute()
    additional_headers = JSONAttribute(null=True)
    sealed_secret_key = UnicodeAttribute(null=True)
    sealed_previous_secret_key = UnicodeAttribute(null=True)
    previous_secret_expires_at = NumberAttribute(null=True)
    auth = BasicAuthAttribute(null=True)
    is_active = BooleanAttribute()
    #: JMESPath payload filter (DESIGN §11, oms_webhooks.routing.filters); null: every event.
    filter = UnicodeAttribute(null=True)
    #: When it was last deactivated (by a PATCH/PUT or automatically), DESIGN §10:
    #: the dispatcher cancels every delivery opened before this time.
    deactivated_at = UTCDateTimeAttribute(null=True)
    created_date = UTCDateTimeAttribute()
    modified_date = UTCDateTimeAttribute()
    version = VersionAttribute()

    by_event_type = SubscriptionByEventType()


class TargetGuardModel(SubscriptionsTableItem):
    """Uniqueness guard: one item per ``(tenant, event_type, target_url)``.

    Shares the subscriptions table (hash ``<tenant>#targets``); never listed.
    """

    subscription_id = UnicodeAttribute()


class HealthModel(SubscriptionsTableItem):
    """A subscription's health, apart from the subscription (DESIGN §10).

    Shares the subscriptions table (hash ``<tenant>#health``, range the
    subscription id). Written by the dispatcher with conditional,
    ``if_not_exists``-style updates (never a versioned full put), so it never
    races a partner's PUT/PATCH of the subscription itself.
    """

    failing_since = UTCDateTimeAttribute(null=True)
    disabled_reason = UnicodeAttribute(null=True)
    disabled_at = UTCDateTimeAttribute(null=True)


class TenantCounterModel(SubscriptionsTableItem):
    """A tenant's subscription count, kept in the same transactions as its subscriptions.

    Shares the subscriptions table (hash ``<tenant>#counts``, range
    ``subscriptions``), so the per-tenant limit holds under concurrent creates.
    """

    total = NumberAttribute(default=0)
