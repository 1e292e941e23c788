"""``GET /hooks/registry/``: the event catalogue a token may subscribe to (DESIGN §2)."""

from __future__ import annotations

from aws_lambda_powertools.event_handler.router import APIGatewayRouter

from oms_webhooks.api import caller
from oms_webhooks.api.openapi import AUTH_ERRORS, responses
from oms_webhooks.api.schemas import Registry
from oms_webhooks.routing.event_types import EVENT_TYPES

router = APIGatewayRouter()


@router.get(
    "/hooks/registry/",
    summary="The event catalogue",
    tags=["subscriptions"],
    responses=responses(200, "Event types a subscription may use", AUTH_ERRORS),
)
def registry() -> Registry:
    """The event types the caller may subscribe to (DESIGN §2; a scoped token sees its scope)."""
    caller.tenant(router.current_event)
    scope = caller.scope(router.current_event)
    return Registry(event_types=[t for t in EVENT_TYPES if scope is None or t in scope])
