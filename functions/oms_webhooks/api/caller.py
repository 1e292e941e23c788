"""Who is asking: the tenant and the token's scope, from the authorizer's context only.

The tenant never comes from the request itself (DESIGN §3): the authorizer
(``handlers/authorizer``) puts it, and the event types the token may use, in
the API Gateway request context.
"""

from __future__ import annotations

from aws_lambda_powertools.utilities.data_classes import APIGatewayProxyEvent

from oms_webhooks.errors import NotAuthenticated


def tenant(event: APIGatewayProxyEvent) -> str:
    """The caller's tenant.

    Raises:
        NotAuthenticated: 401 when the authorizer's context names none.
    """
    context = event.request_context.authorizer.get_context()
    name = context.get("tenant")
    if not name:
        raise NotAuthenticated("Authentication credentials were not provided or are not valid.")
    return str(name)


def scope(event: APIGatewayProxyEvent) -> frozenset[str] | None:
    """The event types the caller's token may subscribe to (None: every type).

    The authorizer passes them comma-separated in its context (an empty
    string for an unrestricted token).
    """
    raw = str(event.request_context.authorizer.get_context().get("event_types") or "")
    types = frozenset(t for t in raw.split(",") if t)
    return types or None
