"""Deliveries table: deliveries and their earlier attempts.

PynamoDB models; :mod:`oms_webhooks.storage.specs` binds them to their table names.
"""

from __future__ import annotations

from pynamodb.attributes import (
    BooleanAttribute,
    NumberAttribute,
    TTLAttribute,
    UnicodeAttribute,
    UTCDateTimeAttribute,
    VersionAttribute,
)
from pynamodb.indexes import GlobalSecondaryIndex, IncludeProjection
from pynamodb.models import Model

from oms_webhooks import names

#: What the delivery log's index copies: the attributes of a delivery that
#: never change after its creation, which the list filters on
#: (``delivery_log.list_deliveries``). Its mutable attributes (status, the
#: last attempt's answer, the dispatcher's count, lease and next attempt)
#: stay out, so neither the claim nor the record of an attempt writes the
#: index copy (DynamoDB charges an index write only when a projected
#: attribute or a key changes): the index is written once per delivery, at
#: its creation. The list reads the page's items from the table for the rest.
DELIVERY_LOG_ATTRIBUTES = (
    "tenant",
    "subscription_id",
    "event_type",
    "event_id",
    "created_date",
)


class DeliveryByTenant(GlobalSecondaryIndex["DeliveryModel"]):
    """Sparse delivery-log index: a tenant's deliveries by creation time.

    Projects :data:`DELIVERY_LOG_ATTRIBUTES` only (DESIGN §12).
    """

    class Meta:
        index_name = "by-tenant"
        projection = IncludeProjection(list(DELIVERY_LOG_ATTRIBUTES))

    log_tenant = UnicodeAttribute(hash_key=True)
    log_sort = UnicodeAttribute(range_key=True)


class DeliveryModel(Model):
    """One delivery: one event to one subscription (``pk`` = uuid, ``sk`` = ``delivery``)."""

    class Meta:
        table_name = names.DEFAULT_DELIVERIES_TABLE
        settings_field = "deliveries_table"

    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True, default="delivery")
    log_tenant = UnicodeAttribute(null=True)
    log_sort = UnicodeAttribute(null=True)
    tenant = UnicodeAttribute()
    subscription_id = UnicodeAttribute()
    event_type = UnicodeAttribute()
    event_id = UnicodeAttribute()
    event_time = UnicodeAttribute()
    status = UnicodeAttribute(default="pending")
    retry_count = NumberAttribute(default=0)
    attempt_count = NumberAttribute(default=0)
    manual_count = NumberAttribute(default=0)
    #: Automatic attempts made before a recover re-opened it (not counted as retries).
    attempts_before_reopen = NumberAttribute(null=True)
    #: When a recover last re-opened it (DESIGN §10); None if never.
    reopened_date = UTCDateTimeAttribute(null=True)
    next_attempt_at = NumberAttribute(null=True)
    #: Unix seconds until which an attempt (automatic or manual) holds the delivery.
    lease_until = NumberAttribute(null=True)
    #: True while that attempt is an operator's resend.
    lease_manual = BooleanAttribute(null=True)
    response_http_status = NumberAttribute(null=True)
    response_content = UnicodeAttribute(null=True)
    response_time = NumberAttribute(null=True)
    #: The last attempt's error (timeout, refused...), None after an HTTP answer.
    error = UnicodeAttribute(null=True)
    #: The number of the attempt whose answer the delivery item holds (its
    #: response fields and ``attempt_at``); None before the first one is
    #: recorded, or for an item recorded before attempts lived here.
    last_attempt = NumberAttribute(null=True)
    #: When that attempt was made.
    attempt_at = UTCDateTimeAttribute(null=True)
    created_date = UTCDateTimeAttribute()
    modified_date = UTCDateTimeAttribute()
    expires_at = TTLAttribute(null=True)
    version = VersionAttribute()

    by_tenant = DeliveryByTenant()


class AttemptModel(Model):
    """An earlier attempt of a delivery (``sk`` = ``attempt#NNNN``); shares the deliveries table.

    The latest attempt is on the delivery item (:class:`DeliveryModel`
    ``last_attempt``); recording the next one writes it here first
    (``delivery_log.attempts_of`` lists both).
    """

    class Meta:
        table_name = names.DEFAULT_DELIVERIES_TABLE
        settings_field = "deliveries_table"

    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)
    at = UTCDateTimeAttribute()
    response_http_status = NumberAttribute(null=True)
    error = UnicodeAttribute(null=True)
    response_time = NumberAttribute()
    response_content = UnicodeAttribute(null=True)
    expires_at = TTLAttribute(null=True)
