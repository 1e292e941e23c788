"""DynamoDB tables: one definition for the code, the local stack and the CDK app.

Each table is declared once as a PynamoDB model (keys, attributes, indexes).
:data:`TABLES` lists them; :func:`table_spec` turns a model into the plain
key/index description that the local stack (``create_table``) and the CDK
stack (``infra/``) both build from, so the three can never disagree.

Table names come from :class:`~oms_webhooks.settings.Settings`; the endpoint
from ``AWS_ENDPOINT_URL`` (unset = real AWS). Models are bound to them by
:func:`bind_tables`, lazily, on first use.

Layout:

* ``subscriptions``: hash ``tenant``, range ``id`` (a time-ordered UUIDv7
  string, so a tenant's subscriptions list in creation order). Uniqueness of
  ``(tenant, target_url, event_type)`` is kept by a guard item in the same
  table under hash ``<tenant>#targets`` (tenant names never contain ``#``),
  written in one transaction with the subscription. A subscription's health
  (``failing_since``, ``disabled_reason``, ``disabled_at``) lives under hash
  ``<tenant>#health`` (:class:`HealthModel`). GSI ``by-event-type``
  (hash ``fanout_event_type``, range ``id``) is sparse: only active
  subscriptions carry ``fanout_event_type``, so fan-out reads exactly the
  active matching subscriptions, never a Scan.
* ``deliveries``: hash ``pk``, range ``sk``, TTL ``expires_at``. One
  partition per delivery (``pk`` = the delivery's 32-hex uuid): the delivery
  item (``sk`` = ``delivery``) and one item per attempt (``sk`` =
  ``attempt#0001``...), so 50 attempts with 4 KiB excerpts never push one
  item past DynamoDB's 400 KB; the event's payload is stored once per event
  (``pk`` = ``event#<event id>``, ``sk`` = ``payload``). GSI ``by-tenant``
  (hash ``log_tenant``, range ``log_sort`` = ``<created ISO>#<uuid>``) serves
  the delivery log newest first; only delivery items carry ``log_tenant``,
  and it copies only what never changes after creation (no attempt writes it).
  The latest attempt lives on the delivery item itself (``last_attempt``,
  ``attempt_at`` and the response fields); an earlier one moves to its own
  attempt item when the next one is recorded.
  Circuit breaker keys live here too (``pk`` = ``target#...``,
  :class:`TargetStateModel`), expiring a day after their last change.
* ``tokens``: hash ``token_hash`` (SHA-256 hex of the token; the token itself
  is never stored); GSI ``by-token-id`` for revocation by id.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

from pynamodb.attributes import (
    BooleanAttribute,
    JSONAttribute,
    ListAttribute,
    MapAttribute,
    NumberAttribute,
    TTLAttribute,
    UnicodeAttribute,
    UTCDateTimeAttribute,
    VersionAttribute,
)
from pynamodb.indexes import (
    AllProjection,
    GlobalSecondaryIndex,
    IncludeProjection,
    KeysOnlyProjection,
)
from pynamodb.models import Model

from oms_webhooks.settings import Settings, aws_endpoint_url, aws_region, get_settings


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


class SubscriptionModel(Model):
    """A tenant's subscription of one target URL to one event type."""

    class Meta:
        table_name = "oms-webhooks-subscriptions"
        settings_field = "subscriptions_table"

    tenant = UnicodeAttribute(hash_key=True)
    id = UnicodeAttribute(range_key=True)
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


class TargetGuardModel(Model):
    """Uniqueness guard: one item per ``(tenant, event_type, target_url)``.

    Shares the subscriptions table (hash ``<tenant>#targets``); never listed.
    """

    class Meta:
        table_name = "oms-webhooks-subscriptions"
        settings_field = "subscriptions_table"

    tenant = UnicodeAttribute(hash_key=True)
    id = UnicodeAttribute(range_key=True)
    subscription_id = UnicodeAttribute()


class HealthModel(Model):
    """A subscription's health, apart from the subscription (DESIGN §10).

    Shares the subscriptions table (hash ``<tenant>#health``, range the
    subscription id). Written by the dispatcher with conditional,
    ``if_not_exists``-style updates (never a versioned full put), so it never
    races a partner's PUT/PATCH of the subscription itself.
    """

    class Meta:
        table_name = "oms-webhooks-subscriptions"
        settings_field = "subscriptions_table"

    tenant = UnicodeAttribute(hash_key=True)
    id = UnicodeAttribute(range_key=True)
    failing_since = UTCDateTimeAttribute(null=True)
    disabled_reason = UnicodeAttribute(null=True)
    disabled_at = UTCDateTimeAttribute(null=True)


class TenantCounterModel(Model):
    """A tenant's subscription count, kept in the same transactions as its subscriptions.

    Shares the subscriptions table (hash ``<tenant>#counts``, range
    ``subscriptions``), so the per-tenant limit holds under concurrent creates.
    """

    class Meta:
        table_name = "oms-webhooks-subscriptions"
        settings_field = "subscriptions_table"

    tenant = UnicodeAttribute(hash_key=True)
    id = UnicodeAttribute(range_key=True)
    total = NumberAttribute(default=0)


class TokenById(GlobalSecondaryIndex["TokenModel"]):
    """Look a token up by its public id (for revocation)."""

    class Meta:
        index_name = "by-token-id"
        projection = AllProjection()

    token_id = UnicodeAttribute(hash_key=True)


class TokenModel(Model):
    """An API token of one tenant; only the SHA-256 of the token is stored."""

    class Meta:
        table_name = "oms-webhooks-tokens"
        settings_field = "tokens_table"

    token_hash = UnicodeAttribute(hash_key=True)
    token_id = UnicodeAttribute()
    tenant = UnicodeAttribute()
    created_date = UTCDateTimeAttribute()
    revoked_date = UTCDateTimeAttribute(null=True)
    event_types = ListAttribute(of=UnicodeAttribute, null=True)

    by_token_id = TokenById()


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
        table_name = "oms-webhooks-deliveries"
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
        table_name = "oms-webhooks-deliveries"
        settings_field = "deliveries_table"

    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)
    at = UTCDateTimeAttribute()
    response_http_status = NumberAttribute(null=True)
    error = UnicodeAttribute(null=True)
    response_time = NumberAttribute()
    response_content = UnicodeAttribute(null=True)
    expires_at = TTLAttribute(null=True)


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
        table_name = "oms-webhooks-deliveries"
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
        table_name = "oms-webhooks-deliveries"
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


class OperatorSlotModel(Model):
    """One of a tenant's slots for pings and manual resends (``oms_webhooks.api.operator_limits``).

    ``pk`` = ``opslot#<tenant>``, ``sk`` = ``slot#<n>``; ``lease_until``: Unix
    time in microseconds the slot is taken until (0 = free; the low digits make
    each request's lease its own).
    """

    class Meta:
        table_name = "oms-webhooks-deliveries"
        settings_field = "deliveries_table"

    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)
    lease_until = NumberAttribute(default=0)
    expires_at = TTLAttribute(null=True)


class RecoveryModel(Model):
    """A recover request and its progress (``pk`` = ``recovery#<id>``, ``sk`` = ``recovery``).

    Shares the deliveries table; expires after the delivery retention.
    """

    class Meta:
        table_name = "oms-webhooks-deliveries"
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


#: Every model; models sharing a table follow the table's owner.
MODELS: tuple[type[Model], ...] = (
    SubscriptionModel,
    TargetGuardModel,
    HealthModel,
    TenantCounterModel,
    TokenModel,
    DeliveryModel,
    AttemptModel,
    EventPayloadModel,
    TargetStateModel,
    OperatorSlotModel,
    RecoveryModel,
)
#: The model that owns each table's definition (keys, indexes, TTL).
TABLES: tuple[type[Model], ...] = (SubscriptionModel, TokenModel, DeliveryModel)


@dataclass(frozen=True)
class IndexSpec:
    """A global secondary index: name, keys as ``(attribute, type)``, projection.

    ``projection`` is DynamoDB's ``ALL``, ``INCLUDE`` or ``KEYS_ONLY``;
    ``non_key_attributes`` (INCLUDE only, else None) the attributes an
    INCLUDE projection copies besides the keys.
    """

    name: str
    hash_key: tuple[str, str]
    range_key: tuple[str, str] | None = None
    non_key_attributes: tuple[str, ...] | None = None
    projection: str = "ALL"


@dataclass(frozen=True)
class TableSpec:
    """Plain description of one table, shared by the local stack and the CDK app.

    Attribute types are DynamoDB's letters (``S``, ``N``, ``B``).
    ``settings_field`` names the :class:`Settings` field holding the table name.
    """

    settings_field: str
    default_name: str
    hash_key: tuple[str, str]
    range_key: tuple[str, str] | None = None
    indexes: tuple[IndexSpec, ...] = field(default_factory=tuple)
    ttl_attribute: str | None = None

    def name(self, settings: Settings) -> str:
        """The table's name under ``settings``."""
        return str(getattr(settings, self.settings_field))


def table_spec(model: type[Model]) -> TableSpec:
    """Describe ``model``'s table (keys, GSIs, TTL attribute) as a :class:`TableSpec`.

    The GSIs of every model sharing the table are included.
    """
    schema = model._get_schema()
    types = {a["AttributeName"]: a["AttributeType"] for a in schema["attribute_definitions"]}
    gsis = list(schema["global_secondary_indexes"])
    for other in MODELS:
        if other is not model and other.Meta.settings_field == model.Meta.settings_field:  # type: ignore[attr-defined]
            other_schema = other._get_schema()
            gsis += other_schema["global_secondary_indexes"]
            for a in other_schema["attribute_definitions"]:
                types.setdefault(a["AttributeName"], a["AttributeType"])

    def keys(key_schema: Any) -> tuple[tuple[str, str], tuple[str, str] | None]:
        hash_name = next(k["AttributeName"] for k in key_schema if k["KeyType"] == "HASH")
        range_names = [k["AttributeName"] for k in key_schema if k["KeyType"] == "RANGE"]
        rng = (range_names[0], types[range_names[0]]) if range_names else None
        return (hash_name, types[hash_name]), rng

    hash_key, range_key = keys(schema["key_schema"])
    indexes = []
    for gsi in gsis:
        ih, ir = keys(gsi["key_schema"])
        projection = gsi["projection"]
        kind = str(projection.get("ProjectionType", "ALL"))
        included = None
        if kind == "INCLUDE":
            included = tuple(projection.get("NonKeyAttributes", ()))
        indexes.append(IndexSpec(gsi["index_name"], ih, ir, included, kind))
    ttl = next(
        (n for n, a in model.get_attributes().items() if type(a).__name__ == "TTLAttribute"), None
    )
    return TableSpec(
        settings_field=model.Meta.settings_field,  # type: ignore[attr-defined]
        default_name=model.Meta.table_name,
        hash_key=hash_key,
        range_key=range_key,
        indexes=tuple(indexes),
        ttl_attribute=ttl,
    )


def table_specs() -> list[TableSpec]:
    """The :class:`TableSpec` of every table."""
    return [table_spec(m) for m in TABLES]


_bind_lock = threading.Lock()
_bound_to: tuple[str | None, str, tuple[str, ...]] | None = None


def bind_tables(settings: Settings | None = None) -> None:
    """Point every model at its table name, region and endpoint.

    Idempotent and cheap when nothing changed; call it before using a model.
    Rebinding (a test or the local stack changing ``AWS_ENDPOINT_URL``) drops
    the models' cached connections.
    """
    global _bound_to
    settings = settings or get_settings()
    endpoint, region = aws_endpoint_url(), aws_region()
    names = tuple(getattr(settings, m.Meta.settings_field) for m in MODELS)  # type: ignore[attr-defined]
    key = (endpoint, region, names)
    if _bound_to == key:
        return
    with _bind_lock:
        for model, name in zip(MODELS, names, strict=True):
            model.Meta.table_name = name
            model.Meta.host = endpoint
            model.Meta.region = region
            model._connection = None
        _bound_to = key
