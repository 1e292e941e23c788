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

from pynamodb.models import Model

from oms_webhooks.settings import Settings, aws_endpoint_url, aws_region, get_settings
from oms_webhooks.storage.models import (
    AttemptModel,
    DeliveryModel,
    EventPayloadModel,
    HealthModel,
    OperatorSlotModel,
    RecoveryModel,
    SubscriptionModel,
    TargetGuardModel,
    TargetStateModel,
    TenantCounterModel,
    TokenModel,
)

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
