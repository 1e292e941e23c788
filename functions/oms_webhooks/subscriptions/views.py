"""The API view of a subscription: secrets become ``has_*`` flags; health and circuit added.

Plain module: the api handler turns a stored
:class:`~oms_webhooks.storage.models.SubscriptionModel` into a
:class:`~oms_webhooks.api.schemas.SubscriptionOut` with :func:`to_resource`
(one subscription) or :func:`to_resources` (a page: one batch read of health and
one of circuit breakers).
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from oms_webhooks.api.schemas import SubscriptionOut, redact_headers
from oms_webhooks.delivery.retry import breaker
from oms_webhooks.storage.models import HealthModel, SubscriptionModel
from oms_webhooks.subscriptions import health_store


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
    """:func:`to_resource` of several subscriptions of one tenant.

    One batch read of their health and one of their circuit breaker keys
    (through the breaker's cache), whatever the number of subscriptions
    (up to 100 keys a call).
    """
    if not items:
        return []
    found = health_store.get_store().get_many(items[0].tenant, [i.id for i in items])
    circuits = breaker.circuit_views([(i.target_url, i.tenant) for i in items])
    return [
        _resource(item, found.get(item.id), circuit)
        for item, circuit in zip(items, circuits, strict=True)
    ]


def to_resource(item: SubscriptionModel) -> SubscriptionOut:
    """The API view of a subscription: secrets become ``has_*`` flags.

    Its health (``failing_since``, ``disabled_reason``, ``disabled_at``,
    DESIGN §10) and its target's circuit breaker (DESIGN §9) are read.
    """
    item_health = health_store.get_store().get(item.tenant, item.id)
    return _resource(item, item_health, breaker.circuit_view(item.target_url, item.tenant))


def _resource(
    item: SubscriptionModel, item_health: HealthModel | None, circuit: dict[str, Any]
) -> SubscriptionOut:
    """The view of ``item`` given its health item and its breaker's ``circuit`` view."""
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
            "circuit": _circuit(circuit),
            "config": {"auth": auth},
            "filter": item.filter,
            "created_date": item.created_date,
            "modified_date": item.modified_date,
        }
    )


def _circuit(view: dict[str, Any]) -> dict[str, Any]:
    """The ``circuit`` field from the breaker's view (``until`` as a time, DESIGN §9)."""
    until = view["until"]
    return {
        "state": view["state"],
        "until": datetime.fromtimestamp(until, UTC) if until is not None else None,
    }
