"""``/hooks/``: subscribe, list, read, replace, change, unsubscribe, rotate the secret, ping.

Input is validated by the pydantic models of :mod:`oms_webhooks.api.schemas`
(Powertools ``enable_validation``); the work is
:mod:`oms_webhooks.subscriptions.service`'s, scoped to the caller's tenant and
token (:mod:`oms_webhooks.api.caller`).
"""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlsplit

from aws_lambda_powertools.event_handler import Response, content_types
from aws_lambda_powertools.event_handler.openapi.params import Body, Path, Query
from aws_lambda_powertools.event_handler.router import APIGatewayRouter

from oms_webhooks.api import caller, operator_limits, query
from oms_webhooks.api.delivery_schemas import AttemptAnswerOut
from oms_webhooks.api.openapi import (
    AUTH_ERRORS,
    BAD_INPUT,
    BODY_ERRORS,
    CONFLICT,
    FORBIDDEN,
    NOT_FOUND,
    TOO_MANY_SENDS,
    responses,
)
from oms_webhooks.api.routes import BASE
from oms_webhooks.api.routes.sends import attempt_answer, send_options
from oms_webhooks.api.schemas import (
    RotateSecretIn,
    RotateSecretOut,
    SubscriptionIn,
    SubscriptionOut,
    SubscriptionPage,
    SubscriptionPatch,
)
from oms_webhooks.delivery import manual
from oms_webhooks.delivery.retry import breaker
from oms_webhooks.observability import service_logger
from oms_webhooks.settings import get_settings
from oms_webhooks.subscriptions import service as subscriptions
from oms_webhooks.subscriptions import views as subscription_views
from oms_webhooks.subscriptions.public_target import public_target_warning

logger = service_logger(child=True)
router = APIGatewayRouter()

#: A subscription id in a path.
SubscriptionId = Annotated[str, Path(description="The subscription id (UUID)")]


def _tenant() -> str:
    return caller.tenant(router.current_event)


def _scope() -> frozenset[str] | None:
    return caller.scope(router.current_event)


@router.post(
    "/hooks/",
    summary="Subscribe a target URL to an event type",
    tags=["subscriptions"],
    status_code=201,
    responses=responses(
        201, "Subscribed", BAD_INPUT, AUTH_ERRORS, FORBIDDEN, CONFLICT, BODY_ERRORS
    ),
)
def create_subscription(body: Annotated[SubscriptionIn, Body()]) -> SubscriptionOut:
    """Create a subscription; 201 with the subscription (never its secrets)."""
    item = subscriptions.create_subscription(_tenant(), body, allowed=_scope())
    logger.info("subscription created", extra={"subscription_id": item.id})
    _warn_if_public(item.id, item.target_url)
    return subscription_views.to_resource(item)


def _warn_if_public(subscription_id: str, target_url: str) -> None:
    """Log a warning for a public target where private ones are allowed (the local stack)."""
    settings = get_settings()
    warning = public_target_warning(
        target_url,
        allow_private=settings.allow_private_targets,
        timeout=settings.dns_timeout_seconds,
    )
    if warning:
        logger.warning(warning, extra={"subscription_id": subscription_id})


@router.get(
    "/hooks/",
    summary="List your subscriptions",
    tags=["subscriptions"],
    responses=responses(200, "One page", BAD_INPUT, AUTH_ERRORS),
)
def list_subscriptions(
    event_type: Annotated[str | None, Query(description="dotted or hyphenated")] = None,
    target_url: Annotated[str | None, Query(max_length=2048)] = None,
    is_active: Annotated[bool | None, Query()] = None,
    limit: Annotated[
        int, Query(ge=1, le=subscriptions.MAX_PAGE_SIZE)
    ] = subscriptions.DEFAULT_PAGE_SIZE,
    cursor: Annotated[str | None, Query(max_length=512)] = None,
) -> SubscriptionPage:
    """One page of the caller's subscriptions, oldest first; ``next`` links the next page."""
    tenant = _tenant()
    query.only_query_params(
        router.current_event, "event_type", "target_url", "is_active", "limit", "cursor"
    )
    event_type = query.event_type_filter(event_type)
    page = subscriptions.list_subscriptions(
        tenant,
        event_type=event_type,
        target_url=target_url,
        is_active=is_active,
        limit=limit,
        cursor=cursor,
        allowed=_scope(),
    )
    params = {
        "event_type": event_type,
        "target_url": target_url,
        "is_active": None if is_active is None else str(is_active).lower(),
        "limit": limit,
    }
    return SubscriptionPage(
        results=subscription_views.to_resources(page.items),
        next=query.page_path(page.next_cursor, params, f"{BASE}/hooks/"),
    )


@router.post(
    "/hooks/<subscription_id>/rotate_secret/",
    summary="Rotate the subscription's secret",
    tags=["subscriptions"],
    responses=responses(
        200,
        "Rotated; a generated secret is shown once",
        *(BAD_INPUT, AUTH_ERRORS, NOT_FOUND, CONFLICT, BODY_ERRORS),
    ),
)
def rotate_secret(
    subscription_id: SubscriptionId,
    body: Annotated[RotateSecretIn | None, Body()] = None,
) -> RotateSecretOut:
    """Set ``secret_key`` (never echoed), or generate a ``whsec_`` one (returned once).

    For the grace period (24 h by default) deliveries are signed with both
    the new and the previous secret (``webhook-signature`` carries two
    ``v1,`` entries, the new one first); ``X-Whisperer-Signature`` uses the
    new secret at once.
    """
    new_secret = body.secret_key.get_secret_value() if body is not None else None
    item, generated = subscriptions.rotate_secret(
        _tenant(), subscription_id, new_secret, allowed=_scope()
    )
    logger.info("secret rotated", extra={"subscription_id": item.id, "generated": bool(generated)})
    return RotateSecretOut.model_validate(
        {**subscription_views.to_resource(item).model_dump(), "secret_key": generated}
    )


@router.post(
    "/hooks/<subscription_id>/ping/",
    summary="Send a signed ping to the subscription now",
    tags=["subscriptions"],
    responses=responses(
        200, "Sent; what the target answered", AUTH_ERRORS, NOT_FOUND, TOO_MANY_SENDS
    ),
)
def ping_subscription(subscription_id: SubscriptionId) -> AttemptAnswerOut:
    """POST a signed ``ping`` event (payload ``{}``) to the target and report its answer.

    At most ``OMS_WEBHOOKS_MAX_OPERATOR_SENDS_PER_TENANT`` pings and resends
    per tenant at once (429 with Retry-After beyond); each ping is logged
    with its target's origin and path (no query, no userinfo) and outcome.
    """
    tenant = _tenant()
    item = subscriptions.get_subscription(tenant, subscription_id, allowed=_scope())
    with operator_limits.operator_slot(tenant):
        result = manual.ping(item, send_options())
    logger.info(
        "ping",
        extra={
            "subscription_id": item.id,
            "target": _logged_target(item.target_url),
            "outcome": "delivered" if result.delivered else "not delivered",
            "response_http_status": result.status_code,
            "error": result.error,
            "response_time": result.response_time_ms,
        },
    )
    return attempt_answer(result)


def _logged_target(url: str) -> str:
    """``url`` as logged: origin and path, without userinfo, query or fragment."""
    return breaker.origin(url) + (urlsplit(url).path or "/")


@router.get(
    "/hooks/<subscription_id>/",
    summary="One subscription",
    tags=["subscriptions"],
    responses=responses(200, "The subscription", AUTH_ERRORS, NOT_FOUND),
)
def get_subscription(subscription_id: SubscriptionId) -> SubscriptionOut:
    """The subscription, if it is the caller's (else 404)."""
    item = subscriptions.get_subscription(_tenant(), subscription_id, allowed=_scope())
    return subscription_views.to_resource(item)


_UPDATE_RESPONSES = responses(
    200, "Changed", BAD_INPUT, AUTH_ERRORS, FORBIDDEN, NOT_FOUND, CONFLICT, BODY_ERRORS
)


@router.put(
    "/hooks/<subscription_id>/",
    summary="Replace a subscription",
    tags=["subscriptions"],
    responses=_UPDATE_RESPONSES,
)
def replace_subscription(
    subscription_id: SubscriptionId, body: Annotated[SubscriptionIn, Body()]
) -> SubscriptionOut:
    """Replace every field; an omitted ``secret_key`` or password keeps its value."""
    return _update(subscription_id, body, partial=False)


@router.patch(
    "/hooks/<subscription_id>/",
    summary="Change some fields of a subscription",
    tags=["subscriptions"],
    responses=_UPDATE_RESPONSES,
)
def patch_subscription(
    subscription_id: SubscriptionId, body: Annotated[SubscriptionPatch, Body()]
) -> SubscriptionOut:
    """Change the given fields; ``null`` removes ``secret_key`` or the password."""
    return _update(subscription_id, body, partial=True)


def _update(
    subscription_id: str, body: SubscriptionIn | SubscriptionPatch, *, partial: bool
) -> SubscriptionOut:
    """PUT (``partial`` false) or PATCH; a changed target URL is checked for a public one."""
    item = subscriptions.update_subscription(
        _tenant(), subscription_id, body, partial=partial, allowed=_scope()
    )
    if body.target_url is not None:
        _warn_if_public(item.id, item.target_url)
    return subscription_views.to_resource(item)


@router.delete(
    "/hooks/<subscription_id>/",
    summary="Unsubscribe",
    tags=["subscriptions"],
    responses=responses(204, "Removed", AUTH_ERRORS, NOT_FOUND),
)
def delete_subscription(subscription_id: SubscriptionId) -> Response[str]:
    """Remove the subscription: no delivery after this, pending retries are dropped."""
    subscriptions.delete_subscription(_tenant(), subscription_id, allowed=_scope())
    return Response(status_code=204, content_type=content_types.APPLICATION_JSON, body="")
