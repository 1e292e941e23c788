"""Subscriptions: create, read, list, change and remove, scoped to one tenant.

Plain module (no Lambda, no HTTP): the api handler and the local stack call
it with validated input models from :mod:`oms_webhooks.api.schemas` and turn
:class:`~oms_webhooks.errors.ServiceError` into HTTP answers.

Rules enforced (DESIGN §3), by :mod:`~oms_webhooks.subscriptions.rules`:
the worst case of the retry schedule ends within the delivery retention;
write-only secrets keep their stored value when omitted and are removed by
``null``; ``Authorization`` cannot be an additional header when basic auth
is set. By :mod:`~oms_webhooks.subscriptions.store`:
``(tenant, target_url, event_type)`` is unique; every read and write names
the tenant in the key, so another tenant's subscription is simply not found
(404). The API view is :mod:`~oms_webhooks.subscriptions.views`.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime

from oms_webhooks.api.schemas import SubscriptionIn, SubscriptionPatch
from oms_webhooks.errors import NotFound, ValidationFailed
from oms_webhooks.settings import get_settings
from oms_webhooks.storage.models import SubscriptionModel
from oms_webhooks.storage.pagination import Page, decode_cursor, encode_cursor
from oms_webhooks.subscriptions import rules
from oms_webhooks.subscriptions.sealing import seal, unseal
from oms_webhooks.subscriptions.store import Filters, get_store
from oms_webhooks.uuid7 import uuid7

#: Largest page of a list, and the default (DESIGN §3).
MAX_PAGE_SIZE = 200
DEFAULT_PAGE_SIZE = 50


def _now() -> datetime:
    return datetime.now(UTC)


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
    rules.check_scope(body.event_type, allowed)
    limit = get_settings().max_subscriptions_per_tenant
    config, max_retries = rules.check_schedule(body.retry_countdown_config, body.max_retries)
    now = _now()
    item = SubscriptionModel(
        tenant,
        str(uuid7()),
        event_type=body.event_type,
        target_url=body.target_url,
        retry_countdown_config=config,
        max_retries=max_retries,
        additional_headers=body.additional_headers,
        sealed_secret_key=rules.seal_secret(body.secret_key),
        is_active=body.is_active,
        filter=body.filter,
        created_date=now,
        modified_date=now,
    )
    item.fanout_event_type = item.event_type if item.is_active else None
    rules.apply_auth(
        item, body.config.model_dump() if body.config else None, rules.auth_fields_given(body)
    )
    rules.check_authorization_header(item)
    rules.refuse_redacted(item)
    get_store().insert(item, limit=limit)
    return item


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
    if not subscription_id or len(subscription_id) > 64:
        raise NotFound("subscription not found")
    item = get_store().get(tenant, subscription_id)
    if item is None:
        raise NotFound("subscription not found")
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
        rules.check_scope(body.event_type, allowed)
        item.event_type = body.event_type
    if "target_url" in given and body.target_url is not None:
        item.target_url = body.target_url
    if "is_active" in given and body.is_active is not None:
        item.is_active = body.is_active
    if "filter" in given:
        item.filter = body.filter
    if "additional_headers" in given:
        item.additional_headers = rules.keep_redacted(
            body.additional_headers, item.additional_headers
        )
    if "secret_key" in body.model_fields_set:
        item.sealed_secret_key = rules.seal_secret(body.secret_key)
        item.sealed_previous_secret_key = None  # set directly: no grace period (see rotate)
        item.previous_secret_expires_at = None
    if "config" in given:
        rules.apply_auth(
            item, body.config.model_dump() if body.config else None, rules.auth_fields_given(body)
        )
    schedule_given = {"retry_countdown_config", "max_retries"} & given
    if schedule_given:
        config = (
            body.retry_countdown_config
            if "retry_countdown_config" in given
            else item.retry_countdown_config
        )
        retries = body.max_retries if "max_retries" in given else int(item.max_retries)
        item.retry_countdown_config, item.max_retries = rules.check_schedule(config, retries)
    rules.check_authorization_header(item)
    item.fanout_event_type = item.event_type if item.is_active else None
    item.modified_date = _now()
    if was_active and not item.is_active:
        item.deactivated_at = item.modified_date  # DESIGN §10: pending ones are cancelled
    get_store().replace(item, old_key=old_key, reactivated=item.is_active and not was_active)
    return item


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
        generated = rules.generate_secret()
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
    get_store().save(item)
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
    get_store().remove(item)


def list_subscriptions(
    tenant: str,
    *,
    event_type: str | None = None,
    target_url: str | None = None,
    is_active: bool | None = None,
    limit: int = DEFAULT_PAGE_SIZE,
    cursor: str | None = None,
    allowed: frozenset[str] | None = None,
) -> Page[SubscriptionModel]:
    """One page of ``tenant``'s subscriptions in creation order, filtered.

    ``limit`` is 1-:data:`MAX_PAGE_SIZE`. ``cursor`` is a previous page's
    ``next_cursor``; it only carries a position, the tenant always comes from
    the caller.

    Raises:
        ValidationFailed: a cursor this API did not issue.
    """
    start_id = decode_cursor(cursor, ("id",), max_value_chars=64)["id"] if cursor else None
    where = Filters(event_type, target_url, is_active, allowed)
    page_size = min(limit + 1, MAX_PAGE_SIZE + 1)
    results = get_store().query(tenant, where, start_id=start_id, page_size=page_size)
    items: list[SubscriptionModel] = []
    for item in results:
        if len(items) == limit:
            return Page(items, encode_cursor({"id": items[-1].id}))
        items.append(item)
    return Page(items, None)
