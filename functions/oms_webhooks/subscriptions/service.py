"""Subscriptions: create, read, list, change and remove, scoped to one tenant.

Plain module (no Lambda, no HTTP): the api handler and the local stack call
it with validated input models from :mod:`oms_webhooks.api.schemas` and turn
:class:`~oms_webhooks.errors.ServiceError` into HTTP answers.

Rules enforced here (DESIGN §3): ``(tenant, target_url, event_type)`` is
unique (a guard item written in the same DynamoDB transaction); the worst
case of the retry schedule ends within the delivery retention; write-only
secrets keep their stored value when omitted and are removed by ``null``;
``Authorization`` cannot be an additional header when basic auth is set;
every read and write names the tenant in the key, so another tenant's
subscription is simply not found (404).
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from pydantic import SecretStr
from pynamodb.connection import Connection
from pynamodb.exceptions import PutError, TransactWriteError
from pynamodb.expressions.condition import Condition
from pynamodb.transactions import TransactWrite

from oms_webhooks.api.schemas import (
    SubscriptionIn,
    SubscriptionOut,
    SubscriptionPatch,
    redact_headers,
)
from oms_webhooks.delivery.request.redaction import REDACTED
from oms_webhooks.delivery.retry import breaker
from oms_webhooks.delivery.retry.countdown import validate_schedule
from oms_webhooks.errors import Conflict, Forbidden, LimitExceeded, NotFound, ValidationFailed
from oms_webhooks.settings import aws_endpoint_url, aws_region, get_settings
from oms_webhooks.storage.models import (
    BasicAuthAttribute,
    HealthModel,
    SubscriptionModel,
    TargetGuardModel,
    TenantCounterModel,
)
from oms_webhooks.storage.pagination import decode_cursor, encode_cursor
from oms_webhooks.storage.specs import bind_tables
from oms_webhooks.subscriptions import health
from oms_webhooks.subscriptions.sealing import seal, unseal
from oms_webhooks.uuid7 import uuid7

#: Largest page of a list, and the default (DESIGN §3).
MAX_PAGE_SIZE = 200
DEFAULT_PAGE_SIZE = 50


@dataclass(frozen=True)
class Page:
    """A page of subscriptions and the cursor of the next one (None at the end)."""

    items: list[SubscriptionModel]
    next_cursor: str | None


def _now() -> datetime:
    return datetime.now(UTC)


def _guard_key(tenant: str, event_type: str, target_url: str) -> tuple[str, str]:
    digest = hashlib.sha256(f"{event_type}\n{target_url}".encode()).hexdigest()
    return f"{tenant}#targets", digest


@lru_cache(maxsize=4)
def _connection(region: str, host: str | None) -> Connection:
    # A botocore client costs ~0.1 s to build: one per endpoint and process.
    return Connection(region=region, host=host)


def _transaction() -> TransactWrite:
    return TransactWrite(connection=_connection(aws_region(), aws_endpoint_url()))


#: Tries of one TransactWriteItems that DynamoDB cancels for a transaction conflict.
CONFLICT_TRIES = 4


def _conflicted(exc: TransactWriteError) -> bool:
    """Cancelled only because another write touched one of its items at the same moment."""
    codes = {reason.code for reason in exc.cancellation_reasons if reason is not None}
    return "TransactionConflict" in codes and "ConditionalCheckFailed" not in codes


def _transact(write: Callable[[TransactWrite], None]) -> None:
    """Run one ``TransactWriteItems`` built by ``write``, retrying transaction conflicts.

    DynamoDB cancels a transaction with the reason ``TransactionConflict`` when
    another transaction touches one of its items at the same time (two creates
    of one tenant both update its counter item). That is nobody's input error:
    the transaction is built and sent again, up to :data:`CONFLICT_TRIES` times
    with jittered backoff (≤ 50 ms, 100 ms, 200 ms), as the AWS documentation
    on transaction conflict handling advises.

    Raises:
        TransactWriteError: a condition failed (the caller maps it to a 4xx),
            or another DynamoDB error.
        Conflict: still conflicting after every try (a 409: retry later).
    """
    for attempt in range(CONFLICT_TRIES):
        try:
            with _transaction() as tx:
                write(tx)
            return
        except TransactWriteError as exc:
            if not _conflicted(exc):
                raise
        if attempt + 1 < CONFLICT_TRIES:
            time.sleep(secrets.randbelow(50 * 2**attempt + 1) / 1000)
    raise Conflict("a concurrent change to the same items kept conflicting; retry")


def _duplicate() -> Conflict:
    return Conflict(
        "a subscription of this target_url to this event_type already exists",
        {"target_url": ["already subscribed to this event_type"]},
    )


def _failed_conditions(exc: TransactWriteError) -> list[bool]:
    return [
        reason is not None and reason.code == "ConditionalCheckFailed"
        for reason in exc.cancellation_reasons
    ]


def _check_schedule(
    config: dict[str, Any] | None, max_retries: int | None
) -> tuple[dict[str, Any], int]:
    """Validate a schedule against the delivery retention (raises CountdownConfigError, a 400)."""
    return validate_schedule(
        config, max_retries, retention_seconds=get_settings().delivery_retention_seconds
    )


def _seal_secret(secret: SecretStr | None) -> str | None:
    return seal(secret.get_secret_value()) if secret is not None else None


def _keep_redacted(new: dict[str, str] | None, old: dict[str, str] | None) -> dict[str, str] | None:
    """Headers sent back with the :data:`REDACTED` marker keep their stored value."""
    if new is None:
        return None
    stored = {k.lower(): v for k, v in (old or {}).items()}
    kept = {}
    for name, value in new.items():
        if value == REDACTED:
            if name.lower() not in stored:
                raise ValidationFailed(
                    f"{name} is {REDACTED} but has no stored value to keep",
                    {"additional_headers": [f"{name}: give the header's real value"]},
                )
            value = stored[name.lower()]
        kept[name] = value
    return kept


def _check_authorization_header(item: SubscriptionModel) -> None:
    headers = item.additional_headers or {}
    if item.auth is not None and any(k.lower() == "authorization" for k in headers):
        raise ValidationFailed(
            "Authorization is set by config.auth (basic auth); remove one of them",
            {"additional_headers": ["Authorization cannot be set while config.auth is configured"]},
        )


def _apply_auth(item: SubscriptionModel, raw: dict[str, Any] | None, given: set[str]) -> None:
    """Apply ``config`` from a request: the password keeps its value when omitted."""
    auth = (raw or {}).get("auth")
    if auth is None:
        item.auth = None
        return
    old_password = item.auth.sealed_password if item.auth is not None else None
    if "password" in given:
        password = auth.get("password")
        if isinstance(password, SecretStr):
            password = password.get_secret_value()
        sealed = seal(password) if password is not None else None
    else:
        sealed = old_password
    item.auth = BasicAuthAttribute(  # type: ignore[no-untyped-call]
        auth_type="basic", username=auth["username"], sealed_password=sealed
    )


def _auth_fields_given(body: SubscriptionIn) -> set[str]:
    if body.config is None or body.config.auth is None:
        return set()
    return set(body.config.auth.model_fields_set)


def _check_scope(event_type: str, allowed: frozenset[str] | None) -> None:
    if allowed is not None and event_type not in allowed:
        raise Forbidden(
            f"this token may not subscribe to {event_type}",
            {
                "event_type": [
                    f"{event_type} is outside this token's scope: {', '.join(sorted(allowed))}"
                ]
            },
        )


def create_subscription(
    tenant: str, body: SubscriptionIn, *, allowed: frozenset[str] | None = None
) -> SubscriptionModel:
    """Store a new subscription for ``tenant`` and return it.

    Raises:
        ValidationFailed: the retry schedule outlasts the delivery retention,
            or ``Authorization`` clashes with basic auth.
        Conflict: ``(tenant, target_url, event_type)`` already exists.
        Forbidden: ``allowed`` (the token's scope) lacks the event type.
    """
    _check_scope(body.event_type, allowed)
    bind_tables()
    limit = get_settings().max_subscriptions_per_tenant
    config, max_retries = _check_schedule(body.retry_countdown_config, body.max_retries)
    now = _now()
    item = SubscriptionModel(
        tenant,
        str(uuid7()),
        event_type=body.event_type,
        target_url=body.target_url,
        retry_countdown_config=config,
        max_retries=max_retries,
        additional_headers=body.additional_headers,
        sealed_secret_key=_seal_secret(body.secret_key),
        is_active=body.is_active,
        filter=body.filter,
        created_date=now,
        modified_date=now,
    )
    item.fanout_event_type = item.event_type if item.is_active else None
    _apply_auth(item, body.config.model_dump() if body.config else None, _auth_fields_given(body))
    _check_authorization_header(item)
    if any(v == REDACTED for v in (item.additional_headers or {}).values()):
        raise ValidationFailed(
            f"a header value cannot be {REDACTED}",
            {"additional_headers": [f"{REDACTED} only keeps a stored value in an update"]},
        )
    guard = TargetGuardModel(
        *_guard_key(tenant, item.event_type, item.target_url), subscription_id=item.id
    )
    counter = _counter(tenant)

    def write(tx: TransactWrite) -> None:
        tx.save(guard, condition=TargetGuardModel.id.does_not_exist())
        tx.save(item, condition=SubscriptionModel.id.does_not_exist())
        tx.update(
            counter,
            actions=[TenantCounterModel.total.add(1)],
            condition=TenantCounterModel.total.does_not_exist()
            | (TenantCounterModel.total < limit),
        )

    try:
        _transact(write)
    except TransactWriteError as exc:
        failed = _failed_conditions(exc)
        if failed and failed[0]:
            raise _duplicate() from None
        if len(failed) == 3 and failed[2]:
            raise LimitExceeded(
                f"a tenant may have at most {limit} subscriptions; delete one first",
                {"body": [f"at most {limit} subscriptions per tenant"]},
            ) from None
        raise
    return item


def _counter(tenant: str) -> TenantCounterModel:
    return TenantCounterModel(f"{tenant}#counts", "subscriptions")


def get_subscription(
    tenant: str, subscription_id: str, *, allowed: frozenset[str] | None = None
) -> SubscriptionModel:
    """The subscription ``subscription_id`` of ``tenant``.

    ``allowed`` is the caller's token scope: a subscription of another event
    type is as invisible as another tenant's.

    Raises:
        NotFound: no such subscription for this tenant and scope (whatever the
            id looks like).
    """
    bind_tables()
    if not subscription_id or len(subscription_id) > 64:
        raise NotFound("subscription not found")
    try:
        item = SubscriptionModel.get(tenant, subscription_id, consistent_read=True)
    except SubscriptionModel.DoesNotExist:
        raise NotFound("subscription not found") from None
    if allowed is not None and item.event_type not in allowed:
        raise NotFound("subscription not found")
    return item


def update_subscription(
    tenant: str,
    subscription_id: str,
    body: SubscriptionIn | SubscriptionPatch,
    *,
    partial: bool,
    allowed: frozenset[str] | None = None,
) -> SubscriptionModel:
    """Change a subscription (PUT when ``partial`` is false, PATCH when true).

    A PUT replaces every field, defaults included, except the write-only
    ``secret_key`` and ``config.auth.password``, which keep their value
    when omitted (``null`` removes them). A PATCH changes the given fields.

    Raises:
        NotFound, ValidationFailed, Conflict (duplicate target, or the
        subscription changed concurrently: retry).
    """
    item = get_subscription(tenant, subscription_id, allowed=allowed)
    given = body.model_fields_set if partial else set(type(body).model_fields)
    nulls = [
        f
        for f in ("event_type", "target_url", "is_active")
        if f in given and getattr(body, f) is None
    ]
    if nulls:
        raise ValidationFailed(
            f"{nulls[0]} cannot be null", {field: ["cannot be null"] for field in nulls}
        )
    old_key = (item.event_type, item.target_url)
    was_active = item.is_active
    if "event_type" in given and body.event_type is not None:
        _check_scope(body.event_type, allowed)
        item.event_type = body.event_type
    if "target_url" in given and body.target_url is not None:
        item.target_url = body.target_url
    if "is_active" in given and body.is_active is not None:
        item.is_active = body.is_active
    if "filter" in given:
        item.filter = body.filter
    if "additional_headers" in given:
        item.additional_headers = _keep_redacted(body.additional_headers, item.additional_headers)
    if "secret_key" in body.model_fields_set:
        item.sealed_secret_key = _seal_secret(body.secret_key)
        item.sealed_previous_secret_key = None  # set directly: no grace period (see rotate)
        item.previous_secret_expires_at = None
    if "config" in given:
        _apply_auth(
            item, body.config.model_dump() if body.config else None, _auth_fields_given(body)
        )
    schedule_given = {"retry_countdown_config", "max_retries"} & given
    if schedule_given:
        config = (
            body.retry_countdown_config
            if "retry_countdown_config" in given
            else item.retry_countdown_config
        )
        retries = body.max_retries if "max_retries" in given else int(item.max_retries)
        item.retry_countdown_config, item.max_retries = _check_schedule(config, retries)
    _check_authorization_header(item)
    item.fanout_event_type = item.event_type if item.is_active else None
    item.modified_date = _now()
    if was_active and not item.is_active:
        item.deactivated_at = item.modified_date  # DESIGN §10: pending ones are cancelled
    new_key = (item.event_type, item.target_url)

    def write(tx: TransactWrite) -> None:
        if new_key != old_key:
            old_guard = TargetGuardModel(*_guard_key(tenant, *old_key), subscription_id=item.id)
            tx.delete(old_guard, condition=TargetGuardModel.subscription_id == item.id)
            new_guard = TargetGuardModel(*_guard_key(tenant, *new_key), subscription_id=item.id)
            tx.save(new_guard, condition=TargetGuardModel.id.does_not_exist())
        tx.save(item)
        if item.is_active and not was_active:
            # Re-activated: failing_since and the disabled reason start afresh.
            tx.delete(health.health_item(tenant, item.id))

    try:
        _transact(write)
    except TransactWriteError as exc:
        failed = _failed_conditions(exc)
        if new_key != old_key and len(failed) >= 3 and failed[1]:
            raise _duplicate() from None
        if any(failed):
            raise Conflict(
                "the subscription was changed concurrently; fetch it and retry"
            ) from None
        raise
    return item


#: Random bytes in a generated secret (192 bits), base64 after ``whsec_``.
GENERATED_SECRET_BYTES = 24


def rotate_secret(
    tenant: str,
    subscription_id: str,
    new_secret: str | None,
    *,
    allowed: frozenset[str] | None = None,
) -> tuple[SubscriptionModel, str | None]:
    """Replace the subscription's secret, keeping the old one for a grace period.

    For ``secret_rotation_grace_seconds`` (default 24 h) deliveries carry
    Standard Webhooks signatures made with both secrets (the new one first),
    so a partner verifies with either while it switches; after that only the
    new one signs. Without ``new_secret`` a ``whsec_`` secret (192 random
    bits) is generated.

    Returns:
        ``(subscription, generated)``: ``generated`` is the new secret when
        this call made it (shown once to the caller), else None.

    Raises:
        NotFound; Conflict if the subscription changed concurrently.
    """
    item = get_subscription(tenant, subscription_id, allowed=allowed)
    generated = None
    if (
        new_secret is not None
        and item.sealed_secret_key is not None
        and unseal(item.sealed_secret_key) == new_secret
    ):
        raise ValidationFailed(
            "secret_key is already the current secret", {"secret_key": ["give a new secret"]}
        )
    if new_secret is None:
        generated = (
            "whsec_" + base64.b64encode(secrets.token_bytes(GENERATED_SECRET_BYTES)).decode()
        )
        new_secret = generated
    grace = get_settings().secret_rotation_grace_seconds
    if item.sealed_secret_key is not None and grace > 0:
        item.sealed_previous_secret_key = item.sealed_secret_key
        item.previous_secret_expires_at = int(time.time()) + grace
    else:
        item.sealed_previous_secret_key = None
        item.previous_secret_expires_at = None
    item.sealed_secret_key = seal(new_secret)
    item.modified_date = _now()
    try:
        item.save()
    except PutError as exc:
        if exc.cause_response_code == "ConditionalCheckFailedException":
            raise Conflict("the subscription was changed concurrently; retry") from None
        raise
    return item, generated


def delete_subscription(
    tenant: str, subscription_id: str, *, allowed: frozenset[str] | None = None
) -> None:
    """Remove a subscription (and its uniqueness guard).

    Deliveries still pending for it are cancelled by the dispatcher, which
    re-reads the subscription before every attempt.

    Raises:
        NotFound: no such subscription for this tenant.
    """
    item = get_subscription(tenant, subscription_id, allowed=allowed)
    guard = TargetGuardModel(
        *_guard_key(tenant, item.event_type, item.target_url), subscription_id=item.id
    )

    def write(tx: TransactWrite) -> None:
        # Versioned: a concurrent change (a new target_url moves the
        # uniqueness guard) makes this fail instead of leaving a stale guard.
        tx.delete(item, condition=SubscriptionModel.id.exists())
        tx.delete(guard, add_version_condition=False)
        tx.update(_counter(tenant), actions=[TenantCounterModel.total.add(-1)])

    try:
        _transact(write)
    except TransactWriteError as exc:
        if any(_failed_conditions(exc)):
            try:
                SubscriptionModel.get(tenant, subscription_id, consistent_read=True)
            except SubscriptionModel.DoesNotExist:
                raise NotFound("subscription not found") from None
            raise Conflict("the subscription was changed concurrently; retry") from None
        raise
    # Its health goes after it (an orphan left by a crash here is never read:
    # ids are not reused).
    health.health_item(tenant, item.id).delete()


def list_subscriptions(
    tenant: str,
    *,
    event_type: str | None = None,
    target_url: str | None = None,
    is_active: bool | None = None,
    limit: int = DEFAULT_PAGE_SIZE,
    cursor: str | None = None,
    allowed: frozenset[str] | None = None,
) -> Page:
    """One page of ``tenant``'s subscriptions in creation order, filtered.

    ``limit`` is 1-:data:`MAX_PAGE_SIZE`. ``cursor`` is a previous page's
    ``next_cursor``; it only carries a position, the tenant always comes from
    the caller.

    Raises:
        ValidationFailed: a cursor this API did not issue.
    """
    bind_tables()
    start_id = decode_cursor(cursor, ("id",), max_value_chars=64)["id"] if cursor else None
    condition: Condition | None = None
    for cond in (
        SubscriptionModel.event_type == event_type if event_type is not None else None,
        SubscriptionModel.target_url == target_url if target_url is not None else None,
        SubscriptionModel.is_active == is_active if is_active is not None else None,
        SubscriptionModel.event_type.is_in(*sorted(allowed)) if allowed is not None else None,
    ):
        if cond is not None:
            condition = cond if condition is None else condition & cond
    last_key = {"tenant": {"S": tenant}, "id": {"S": start_id}} if start_id else None
    results: Iterator[SubscriptionModel] = SubscriptionModel.query(
        tenant,
        filter_condition=condition,
        last_evaluated_key=last_key,
        page_size=min(limit + 1, MAX_PAGE_SIZE + 1),
    )
    items: list[SubscriptionModel] = []
    for item in results:
        if len(items) == limit:
            return Page(items, encode_cursor({"id": items[-1].id}))
        items.append(item)
    return Page(items, None)


def _disabled_at(item: SubscriptionModel, item_health: HealthModel | None) -> datetime | None:
    """When an inactive subscription was turned inactive (automatically or by a change)."""
    if item.is_active:
        return None
    if item_health is not None and item_health.disabled_at is not None:
        return item_health.disabled_at
    return item.deactivated_at


def _grace_end(item: SubscriptionModel) -> datetime | None:
    expires = item.previous_secret_expires_at
    if not item.sealed_previous_secret_key or not expires or float(expires) <= time.time():
        return None
    return datetime.fromtimestamp(float(expires), tz=UTC)


def to_resources(items: list[SubscriptionModel]) -> list[SubscriptionOut]:
    """:func:`to_resource` of several subscriptions of one tenant (one batch read of health)."""
    if not items:
        return []
    found = health.get_many(items[0].tenant, [i.id for i in items])
    return [to_resource(i, found.get(i.id), health_loaded=True) for i in items]


def to_resource(
    item: SubscriptionModel,
    item_health: HealthModel | None = None,
    *,
    health_loaded: bool = False,
) -> SubscriptionOut:
    """The API view of a subscription: secrets become ``has_*`` flags.

    Its health (``failing_since``, ``disabled_reason``, ``disabled_at``,
    DESIGN §10) is read unless ``health_loaded`` (then ``item_health`` is it).
    """
    if not health_loaded:
        item_health = health.get_health(item.tenant, item.id)
    auth = None
    if item.auth is not None:
        auth = {
            "auth_type": "basic",
            "username": item.auth.username,
            "has_password": item.auth.sealed_password is not None,
        }
    return SubscriptionOut.model_validate(
        {
            "id": item.id,
            "event_type": item.event_type,
            "target_url": item.target_url,
            "retry_countdown_config": item.retry_countdown_config,
            "max_retries": int(item.max_retries),
            "additional_headers": redact_headers(item.additional_headers),
            "has_secret_key": item.sealed_secret_key is not None,
            "previous_secret_expires_at": _grace_end(item),
            "is_active": item.is_active,
            "failing_since": item_health.failing_since if item_health else None,
            "disabled_reason": item_health.disabled_reason if item_health else None,
            "disabled_at": _disabled_at(item, item_health),
            "circuit": _circuit(item),
            "config": {"auth": auth},
            "filter": item.filter,
            "created_date": item.created_date,
            "modified_date": item.modified_date,
        }
    )


def _circuit(item: SubscriptionModel) -> dict[str, Any]:
    """The ``circuit`` field: the target's breaker as this tenant sees it (DESIGN §9)."""
    view = breaker.circuit_view(item.target_url, item.tenant)
    until = view["until"]
    return {
        "state": view["state"],
        "until": datetime.fromtimestamp(until, UTC) if until is not None else None,
    }
