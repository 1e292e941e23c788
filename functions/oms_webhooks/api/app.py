"""The whisperer-compatible REST API (DESIGN §3) on Powertools' REST resolver.

Routes validate their input with the pydantic models of
:mod:`oms_webhooks.api.schemas` (Powertools ``enable_validation``) and call
:mod:`oms_webhooks.subscriptions.service`; the tenant always comes from the
authorizer's context, never from the request. Every error is JSON
``{"code", "detail", "errors": {field: [messages]}}``: validation errors are
400 (not Powertools' default 422, in the answers and in the OpenAPI
document), malformed JSON is a 400 ``invalid_json`` that says where it broke.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import re
import threading
from datetime import UTC, datetime
from functools import cache
from typing import TYPE_CHECKING, Annotated, Any
from urllib.parse import urlencode, urlsplit

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response, content_types
from aws_lambda_powertools.event_handler.openapi.exceptions import (
    RequestUnsupportedContentType,
    RequestValidationError,
)
from aws_lambda_powertools.event_handler.openapi.params import Body, Path, Query
from aws_lambda_powertools.event_handler.openapi.types import OpenAPIResponse
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BeforeValidator

from oms_webhooks import __version__
from oms_webhooks.api import operator_limits
from oms_webhooks.api.schemas import (
    AttemptAnswerOut,
    DeliveryDetailOut,
    DeliveryOut,
    DeliveryPage,
    ErrorOut,
    RecoverAcceptedOut,
    RecoverIn,
    RecoveryOut,
    Registry,
    ResendIn,
    RotateSecretIn,
    RotateSecretOut,
    SubscriptionIn,
    SubscriptionOut,
    SubscriptionPage,
    SubscriptionPatch,
)
from oms_webhooks.aws_clients import client as aws_client
from oms_webhooks.delivery import log as delivery_log
from oms_webhooks.delivery import manual, operational_events
from oms_webhooks.delivery.outcome import Outcome
from oms_webhooks.delivery.request.sender import AttemptResult, SendOptions
from oms_webhooks.delivery.retry import breaker, held
from oms_webhooks.errors import (
    NotAuthenticated,
    NotFound,
    PayloadTooLarge,
    ServiceError,
    TooManyRequests,
    UnsupportedMediaType,
    ValidationFailed,
)
from oms_webhooks.routing import recovery
from oms_webhooks.routing.event_types import EVENT_TYPES, normalize_event_type
from oms_webhooks.settings import get_settings
from oms_webhooks.subscriptions import service as subscriptions
from oms_webhooks.subscriptions import views as subscription_views
from oms_webhooks.subscriptions.public_target import public_target_warning

if TYPE_CHECKING:
    # Powertools' OpenAPI document models: ~100 pydantic models (70-140 ms to
    # import), loaded only when the document or the docs page is asked for.
    from aws_lambda_powertools.event_handler.openapi.models import OpenAPI

logger = Logger(service="oms-webhooks", child=True)
metrics = Metrics(namespace=os.environ.get("POWERTOOLS_METRICS_NAMESPACE", "OmsWebhooks"))

BASE = "/whisperer"
_BODY_METHODS = {"POST", "PUT", "PATCH"}


def _error_response(status: int, description: str) -> dict[int, OpenAPIResponse]:
    return {
        status: {"description": description, "content": {"application/json": {"model": ErrorOut}}}
    }


_AUTH_ERRORS = _error_response(401, "Missing, unknown or revoked token")
_BAD_INPUT = _error_response(400, "Invalid input: the fields and the reasons")
_NOT_FOUND = _error_response(404, "No such subscription for this tenant")
_TOO_MANY_SENDS = _error_response(
    429, "Too many pings or resends of this tenant in flight (see Retry-After)"
)
_BODY_ERRORS = {
    **_error_response(413, "Request body too large"),
    **_error_response(415, "Request body is not JSON"),
}
_CONFLICT = _error_response(409, "Duplicate subscription or concurrent change")
_FORBIDDEN = _error_response(403, "The token may not subscribe to this event type")


class WhispererResolver(APIGatewayRestResolver):
    """REST resolver whose OpenAPI document lists the 400 we answer, not 422."""

    def get_openapi_schema(self, *args: Any, **kwargs: Any) -> OpenAPI:
        """The OpenAPI document, with Powertools' 422 responses replaced by our 400."""
        from aws_lambda_powertools.event_handler.openapi.models import OpenAPI

        schema = super().get_openapi_schema(*args, **kwargs)
        doc = schema.model_dump(by_alias=True, exclude_none=True)
        # Powertools' REST resolver matches with or without the trailing slash
        # and documents neither; the whisperer API's paths end with one.
        doc["paths"] = {
            (path if path.endswith((".json", "/docs")) else f"{path}/"): item
            for path, item in doc.get("paths", {}).items()
        }
        for path_item in doc["paths"].values():
            for operation in path_item.values():
                if isinstance(operation, dict) and "responses" in operation:
                    responses = operation["responses"]
                    responses.pop("422", None)
                    responses.pop(422, None)
        components = doc.get("components", {}).get("schemas", {})
        for name in ("HTTPValidationError", "ValidationError", "ResponseValidationError"):
            components.pop(name, None)
        return OpenAPI.model_validate(doc)


app = WhispererResolver(enable_validation=True)

DOCS_PATH = f"{BASE}/docs"
_docs_lock = threading.Lock()
_docs_enabled = threading.Event()


@cache
def openapi_settings() -> dict[str, Any]:
    """Title, version, description and security of the OpenAPI document (keyword arguments
    of Powertools' ``get_openapi_json_schema`` and ``enable_swagger``)."""
    from aws_lambda_powertools.event_handler.openapi.models import APIKey

    return {
        "title": "oms-webhooks",
        "version": __version__,
        "description": "Whisperer-compatible webhook subscriptions for OMS events. "
        "Authenticate with the header `Authorization: Token <token>`.",
        "security_schemes": {
            "Token": APIKey.model_validate(
                {
                    "type": "apiKey",
                    "in": "header",
                    "name": "Authorization",
                    "description": "`Token <token>`",
                }
            )
        },
        "security": [{"Token": []}],
    }


def _enable_docs(event: dict[str, Any]) -> None:
    """Register Powertools' Swagger UI route at :data:`DOCS_PATH` before its first request.

    Registering it imports the OpenAPI document models (~100 pydantic models),
    so it waits for a request to the docs page instead of every cold start.
    """
    if _docs_enabled.is_set() or not str(event.get("path") or "").rstrip("/").endswith(DOCS_PATH):
        return
    with _docs_lock:
        if not _docs_enabled.is_set():
            app.enable_swagger(path=DOCS_PATH, **openapi_settings())
            _docs_enabled.set()


def _json(status: int, body: Any) -> Response[Any]:
    return Response(
        status_code=status,
        content_type=content_types.APPLICATION_JSON,
        body=json.dumps(body, ensure_ascii=False, separators=(",", ":")),
    )


def _only_query_params(*allowed: str) -> None:
    """400 for a query parameter the endpoint does not have (a typo'd filter
    would otherwise silently return everything)."""
    given = set(app.current_event.query_string_parameters or {})
    unknown = sorted(given - set(allowed))
    if unknown:
        raise ValidationFailed(
            f"unknown query parameter {unknown[0]!r}; this endpoint takes: {', '.join(allowed)}",
            {name: ["unknown query parameter"] for name in unknown},
        )


def _tenant() -> str:
    context = app.current_event.request_context.authorizer.get_context()
    tenant = context.get("tenant")
    if not tenant:
        raise NotAuthenticated("Authentication credentials were not provided or are not valid.")
    return str(tenant)


def _scope() -> frozenset[str] | None:
    """The event types the caller's token may subscribe to (None: every type).

    The authorizer passes them comma-separated in its context (an empty
    string for an unrestricted token).
    """
    raw = str(app.current_event.request_context.authorizer.get_context().get("event_types") or "")
    types = frozenset(t for t in raw.split(",") if t)
    return types or None


@app.exception_handler(ServiceError)
def _service_error(exc: ServiceError) -> Response[Any]:
    return _json(exc.status, exc.as_body())


@app.exception_handler(TooManyRequests)
def _too_many_requests(exc: TooManyRequests) -> Response[Any]:
    response = _json(exc.status, exc.as_body())
    response.headers["Retry-After"] = str(exc.retry_after)
    return response


def _field_name(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc[1:]] if loc and loc[0] in ("body", "query", "path") else []
    return ".".join(parts) or "body"


def _clean_message(msg: str) -> str:
    for prefix in ("Value error, ", "Assertion failed, "):
        if msg.startswith(prefix):
            return msg[len(prefix) :]
    return msg


@app.exception_handler(RequestValidationError)
def _validation_error(exc: RequestValidationError) -> Response[Any]:
    errors: dict[str, list[str]] = {}
    for error in exc.errors():
        if error.get("type") == "json_invalid":
            return _invalid_json()
        loc = tuple(error.get("loc", ()))
        message = _clean_message(str(error.get("msg", "invalid")))
        if error.get("type") == "missing" and loc == ("body",):
            message = "a JSON object body is required"
        elif error.get("type") == "extra_forbidden":
            message = "unknown field"
        errors.setdefault(_field_name(loc), []).append(message)
    first_field, first_messages = next(iter(errors.items()), ("body", ["invalid"]))
    detail = f"Invalid input: {first_field}: {first_messages[0]}"
    return _json(400, {"code": "invalid", "detail": detail, "errors": errors})


class InvalidJson(ServiceError):
    """400: the body is not JSON (the answer says where it broke)."""

    status = 400
    code = "invalid_json"


@app.exception_handler(RequestUnsupportedContentType)
def _unsupported_content_type(exc: RequestUnsupportedContentType) -> Response[Any]:
    refused = UnsupportedMediaType(
        "request body is not JSON; send Content-Type: application/json",
        {"body": ["send Content-Type: application/json"]},
    )
    return _json(refused.status, refused.as_body())


def _invalid_json() -> Response[Any]:
    body = app.current_event.decoded_body or ""
    try:
        json.loads(body)
    except json.JSONDecodeError as err:
        detail = (
            f"Malformed JSON at line {err.lineno} column {err.colno} (char {err.pos}): {err.msg}"
        )
    else:  # pragma: no cover - Powertools only reports json_invalid for undecodable bodies
        detail = "Malformed JSON"
    return _json(400, {"code": "invalid_json", "detail": detail, "errors": {"body": [detail]}})


@app.not_found
def _not_found(_: Exception) -> Response[Any]:
    """404; 405 with ``Allow`` when the path exists for other methods (RFC 9110 §15.5.6)."""
    path = app.current_event.path
    allowed: list[str] = []
    for routes in (app._static_routes, app._dynamic_routes):  # a static path hides a pattern
        allowed = allowed or sorted({r.method for r in routes if r.rule.match(path)})
    if not allowed:
        return _json(404, NotFound("Not found.").as_body())
    method = app.current_event.http_method.upper()
    detail = f"method {method} is not allowed here; allowed: {', '.join(allowed)}"
    return Response(
        status_code=405,
        content_type=content_types.APPLICATION_JSON,
        body=json.dumps({"code": "method_not_allowed", "detail": detail, "errors": {}}),
        headers={"Allow": ", ".join(allowed)},
    )


def _page_path(
    page_cursor: str | None, params: dict[str, Any], path: str = f"{BASE}/hooks/"
) -> str | None:
    if page_cursor is None:
        return None
    query = {k: v for k, v in params.items() if v is not None}
    query["cursor"] = page_cursor
    return f"{path}?{urlencode(query)}"


@app.get(
    f"{BASE}/hooks/registry/",
    summary="The event catalogue",
    tags=["subscriptions"],
    responses={200: {"description": "Event types a subscription may use"}, **_AUTH_ERRORS},
)
def registry() -> Registry:
    """The event types the caller may subscribe to (DESIGN §2; a scoped token sees its scope)."""
    _tenant()
    scope = _scope()
    return Registry(event_types=[t for t in EVENT_TYPES if scope is None or t in scope])


@app.post(
    f"{BASE}/hooks/",
    summary="Subscribe a target URL to an event type",
    tags=["subscriptions"],
    status_code=201,
    responses={
        201: {"description": "Subscribed"},
        **_BAD_INPUT,
        **_AUTH_ERRORS,
        **_FORBIDDEN,
        **_CONFLICT,
        **_BODY_ERRORS,
    },
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


@app.get(
    f"{BASE}/hooks/",
    summary="List your subscriptions",
    tags=["subscriptions"],
    responses={200: {"description": "One page"}, **_BAD_INPUT, **_AUTH_ERRORS},
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
    _only_query_params("event_type", "target_url", "is_active", "limit", "cursor")
    if event_type is not None:
        try:
            event_type = normalize_event_type(event_type)
        except ValueError as exc:
            raise _bad_query("event_type", str(exc)) from None
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
        next=_page_path(page.next_cursor, params),
    )


@app.post(
    f"{BASE}/hooks/<subscription_id>/rotate_secret/",
    summary="Rotate the subscription's secret",
    tags=["subscriptions"],
    responses={
        200: {"description": "Rotated; a generated secret is shown once"},
        **_BAD_INPUT,
        **_AUTH_ERRORS,
        **_NOT_FOUND,
        **_CONFLICT,
        **_BODY_ERRORS,
    },
)
def rotate_secret(
    subscription_id: Annotated[str, Path(description="The subscription id (UUID)")],
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


@app.post(
    f"{BASE}/hooks/<subscription_id>/ping/",
    summary="Send a signed ping to the subscription now",
    tags=["subscriptions"],
    responses={
        200: {"description": "Sent; what the target answered"},
        **_AUTH_ERRORS,
        **_NOT_FOUND,
        **_TOO_MANY_SENDS,
    },
)
def ping_subscription(
    subscription_id: Annotated[str, Path(description="The subscription id (UUID)")],
) -> AttemptAnswerOut:
    """POST a signed ``ping`` event (payload ``{}``) to the target and report its answer.

    At most ``OMS_WEBHOOKS_MAX_OPERATOR_SENDS_PER_TENANT`` pings and resends
    per tenant at once (429 with Retry-After beyond); each ping is logged
    with its target's origin and path (no query, no userinfo) and outcome.
    """
    tenant = _tenant()
    item = subscriptions.get_subscription(tenant, subscription_id, allowed=_scope())
    with operator_limits.operator_slot(tenant):
        result = manual.ping(item, SendOptions.from_settings(get_settings()))
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
    return _attempt_answer(result)


def _logged_target(url: str) -> str:
    """``url`` as logged: origin and path, without userinfo, query or fragment."""
    return breaker.origin(url) + (urlsplit(url).path or "/")


def _attempt_answer(result: AttemptResult) -> AttemptAnswerOut:
    """The answer of a ping or a manual resend: what the target said, whatever it was."""
    if result.delivered:
        detail = "delivered"
    elif result.error:
        detail = f"not delivered: {result.error}"
    else:
        detail = f"not delivered: the target answered {result.status_code}"
    return AttemptAnswerOut(
        detail=detail,
        response_status=result.status_code,
        response_content=result.response_excerpt or None,
        delivered=result.delivered,
        response_time=result.response_time_ms,
    )


def _bad_query(field: str, message: str) -> ServiceError:
    return ValidationFailed(f"Invalid input: {field}: {message}", {field: [message]})


SubscriptionId = Annotated[str, Path(description="The subscription id (UUID)")]


@app.get(
    f"{BASE}/hooks/<subscription_id>/",
    summary="One subscription",
    tags=["subscriptions"],
    responses={200: {"description": "The subscription"}, **_AUTH_ERRORS, **_NOT_FOUND},
)
def get_subscription(subscription_id: SubscriptionId) -> SubscriptionOut:
    """The subscription, if it is the caller's (else 404)."""
    item = subscriptions.get_subscription(_tenant(), subscription_id, allowed=_scope())
    return subscription_views.to_resource(item)


_UPDATE_RESPONSES: dict[int, OpenAPIResponse] = {
    200: {"description": "Changed"},
    **_BAD_INPUT,
    **_AUTH_ERRORS,
    **_FORBIDDEN,
    **_NOT_FOUND,
    **_CONFLICT,
    **_BODY_ERRORS,
}


@app.put(
    f"{BASE}/hooks/<subscription_id>/",
    summary="Replace a subscription",
    tags=["subscriptions"],
    responses=_UPDATE_RESPONSES,
)
def replace_subscription(
    subscription_id: SubscriptionId, body: Annotated[SubscriptionIn, Body()]
) -> SubscriptionOut:
    """Replace every field; an omitted ``secret_key`` or password keeps its value."""
    item = subscriptions.update_subscription(
        _tenant(), subscription_id, body, partial=False, allowed=_scope()
    )
    if body.target_url is not None:
        _warn_if_public(item.id, item.target_url)
    return subscription_views.to_resource(item)


@app.patch(
    f"{BASE}/hooks/<subscription_id>/",
    summary="Change some fields of a subscription",
    tags=["subscriptions"],
    responses=_UPDATE_RESPONSES,
)
def patch_subscription(
    subscription_id: SubscriptionId, body: Annotated[SubscriptionPatch, Body()]
) -> SubscriptionOut:
    """Change the given fields; ``null`` removes ``secret_key`` or the password."""
    item = subscriptions.update_subscription(
        _tenant(), subscription_id, body, partial=True, allowed=_scope()
    )
    if body.target_url is not None:
        _warn_if_public(item.id, item.target_url)
    return subscription_views.to_resource(item)


@app.delete(
    f"{BASE}/hooks/<subscription_id>/",
    summary="Unsubscribe",
    tags=["subscriptions"],
    responses={204: {"description": "Removed"}, **_AUTH_ERRORS, **_NOT_FOUND},
)
def delete_subscription(subscription_id: SubscriptionId) -> Response[str]:
    """Remove the subscription: no delivery after this, pending retries are dropped."""
    subscriptions.delete_subscription(_tenant(), subscription_id, allowed=_scope())
    return Response(status_code=204, content_type=content_types.APPLICATION_JSON, body="")


_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def _iso_8601_only(value: Any) -> Any:
    """Refuse what pydantic would read as Unix seconds (``0.5``): the filter takes ISO 8601.

    A naive date-time is taken as UTC. An offset's ``+`` must be sent
    percent-encoded (``%2B``): in a query string a bare ``+`` means a space.
    """
    if isinstance(value, str) and not _ISO_DATE.match(value):
        raise ValueError("must be an ISO 8601 date-time, e.g. 2024-05-01T12:00:00Z")
    if isinstance(value, str) and re.search(r"T\d{2}:\d{2}(:\d{2}(\.\d+)?)? \d{2}:?\d{2}\Z", value):
        raise ValueError(
            "looks like a UTC offset whose '+' arrived as a space: encode it as %2B "
            "(e.g. 2024-05-01T12:00:00%2B03:00) or use Z"
        )
    return value


IsoDatetime = Annotated[datetime, BeforeValidator(_iso_8601_only)]


@app.get(
    f"{BASE}/hook_events/",
    summary="The delivery log",
    tags=["deliveries"],
    responses={200: {"description": "One page, newest first"}, **_BAD_INPUT, **_AUTH_ERRORS},
)
def list_deliveries(
    webhook: Annotated[str | None, Query(max_length=64, description="subscription id")] = None,
    event_type: Annotated[str | None, Query()] = None,
    delivered: Annotated[bool | None, Query()] = None,
    response_http_status: Annotated[int | None, Query(ge=100, le=599)] = None,
    created_date__gte: Annotated[IsoDatetime | None, Query()] = None,
    created_date__lte: Annotated[IsoDatetime | None, Query()] = None,
    limit: Annotated[
        int, Query(ge=1, le=delivery_log.MAX_PAGE_SIZE)
    ] = delivery_log.DEFAULT_PAGE_SIZE,
    cursor: Annotated[str | None, Query(max_length=512)] = None,
) -> DeliveryPage:
    """One page of the caller's deliveries, newest first; ``next`` links the next page."""
    tenant = _tenant()
    _only_query_params(
        "webhook",
        "event_type",
        "delivered",
        "response_http_status",
        "created_date__gte",
        "created_date__lte",
        "limit",
        "cursor",
    )
    if event_type is not None:
        try:
            event_type = normalize_event_type(event_type)
        except ValueError as exc:
            raise _bad_query("event_type", str(exc)) from None
    bounds = [_utc(created_date__gte), _utc(created_date__lte)]
    page = delivery_log.list_deliveries(
        tenant,
        subscription_id=webhook,
        event_type=event_type,
        delivered=delivered,
        response_http_status=response_http_status,
        created_gte=bounds[0],
        created_lte=bounds[1],
        limit=limit,
        cursor=cursor,
        allowed=_scope(),
    )
    params = {
        "webhook": webhook,
        "event_type": event_type,
        "delivered": None if delivered is None else str(delivered).lower(),
        "response_http_status": response_http_status,
        "created_date__gte": bounds[0].isoformat() if bounds[0] else None,
        "created_date__lte": bounds[1].isoformat() if bounds[1] else None,
        "limit": limit,
    }
    why = held.reasons(tenant, page.items)
    return DeliveryPage(
        results=[
            DeliveryOut.model_validate({**delivery_log.to_resource(i), "reason": why.get(i.pk)})
            for i in page.items
        ],
        next=_page_path(page.next_cursor, params, f"{BASE}/hook_events/"),
    )


def _utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


@app.get(
    f"{BASE}/hook_events/<delivery_uuid>/",
    summary="One delivery with its latest 100 attempts",
    tags=["deliveries"],
    responses={
        200: {
            "description": "The delivery",
            "content": {"application/json": {"model": DeliveryDetailOut}},
        },
        **_AUTH_ERRORS,
        **_error_response(404, "No such delivery for this tenant"),
    },
)
def get_delivery(
    delivery_uuid: Annotated[str, Path(description="32 lowercase hex")],
) -> Response[Any]:
    """The delivery, its request payload and its latest 100 attempts, if it is the caller's."""
    tenant = _tenant()
    item = delivery_log.get_delivery(tenant, delivery_uuid, allowed=_scope())
    view, payload_json = delivery_log.to_detail(item)
    view["reason"] = held.reasons(tenant, [item]).get(item.pk)
    body = _detail_body(DeliveryDetailOut.model_validate(view), payload_json)
    return Response(status_code=200, content_type=content_types.APPLICATION_JSON, body=body)


def _detail_body(detail: DeliveryDetailOut, payload_json: str | None) -> str:
    """JSON text of ``detail`` with the stored payload text written in as it is.

    Neither parsed nor re-serialised: a payload nested as deep as the router
    accepts (:data:`oms_webhooks.routing.event_json.MAX_NESTING_DEPTH`) is beyond
    what pydantic and Powertools' encoder serialise (about 250 levels).
    """
    document = detail.model_dump(mode="json")
    request = document.pop("request_payload")
    head = json.dumps(document, ensure_ascii=False, separators=(",", ":"))
    event = json.dumps(request.get("event"), ensure_ascii=False, separators=(",", ":"))
    payload = payload_json if payload_json is not None else "null"
    return f'{head[:-1]},"request_payload":{{"event":{event},"payload":{payload}}}}}'


def _publish_notices(outcome: Outcome) -> None:
    """Put a resend's operational events on the bus; a failure is logged and counted only.

    As the dispatcher does (DESIGN §10): the metric ``OperationalEventNotPublished``
    (Count), flushed at once as an EMF line on stdout, since the API emits no
    other metric (no ``log_metrics`` on every request, no empty-metrics warning).
    The resend's answer is unaffected.
    """
    if not outcome.notices:
        return
    failed = operational_events.publish(outcome.notices)  # never raises
    if failed:
        metrics.add_metric(name="OperationalEventNotPublished", unit=MetricUnit.Count, value=1)
        metrics.flush_metrics()
        logger.error(
            "operational events not published; the resend is unaffected",
            extra={"delivery_uuid": outcome.delivery_uuid, "detail_types": failed},
        )


@app.post(
    f"{BASE}/hook_events/<delivery_uuid>/retry/",
    summary="Resend a delivery now",
    tags=["deliveries"],
    responses={
        200: {"description": "Sent; the partner's answer, whatever it was"},
        **_BAD_INPUT,
        **_AUTH_ERRORS,
        **_error_response(404, "No such delivery for this tenant"),
        **_error_response(409, "Already delivered (without force), or the subscription is gone"),
        **_TOO_MANY_SENDS,
        **_BODY_ERRORS,
    },
)
def resend_delivery(
    delivery_uuid: Annotated[str, Path(description="32 lowercase hex")],
    body: Annotated[ResendIn | None, Body()] = None,
) -> AttemptAnswerOut:
    """Send the delivery once now (one attempt, bounded timeouts) and record it."""
    force = body.force if body is not None else False
    tenant = _tenant()
    with operator_limits.operator_slot(tenant):
        outcome = manual.resend(
            tenant,
            delivery_uuid,
            SendOptions.from_settings(get_settings()),
            force=force,
            allowed=_scope(),
        )
    _publish_notices(outcome)
    result = outcome.result
    assert result is not None  # a resend always makes its attempt
    logger.info("manual resend", extra={"delivery_uuid": delivery_uuid, "outcome": outcome.kind})
    return _attempt_answer(result)


@app.post(
    f"{BASE}/hooks/<subscription_id>/recover/",
    summary="Recover the events a subscription missed in a window",
    tags=["subscriptions"],
    status_code=202,
    responses={
        202: {"description": "Accepted; the recovery runs in the background"},
        **_BAD_INPUT,
        **_AUTH_ERRORS,
        **_NOT_FOUND,
        **_error_response(409, "The subscription is inactive (re-activate it first)"),
        **_BODY_ERRORS,
    },
)
def recover_subscription(
    subscription_id: Annotated[str, Path(description="The subscription id (UUID)")],
    body: Annotated[RecoverIn, Body()],
) -> RecoverAcceptedOut:
    """Send again every kept event of the window the subscription has not received.

    Each event keeps its delivery id (its ``webhook-id``): a delivery that
    failed or was cancelled is re-opened, a missing one created, a pending or
    delivered one skipped, so recovering twice sends nothing twice. They are
    enqueued in the background at ``OMS_WEBHOOKS_RECOVER_RATE`` per second.
    """
    item = recovery.start(
        _tenant(),
        subscription_id,
        body.since,
        body.until,
        sqs=aws_client("sqs"),
        queue_url=get_settings().recovery_queue_url,
        allowed=_scope(),
    )
    logger.info("recovery started", extra={"subscription_id": subscription_id})
    return RecoverAcceptedOut(
        detail="recovery started", recovery=item.recovery_id, queued=int(item.queued or 0)
    )


@app.get(
    f"{BASE}/hooks/<subscription_id>/recover/<recovery_id>/",
    summary="Progress of a recovery",
    tags=["subscriptions"],
    responses={**_AUTH_ERRORS, **_error_response(404, "No such subscription or recovery")},
)
def get_recovery(
    subscription_id: Annotated[str, Path(description="The subscription id (UUID)")],
    recovery_id: Annotated[str, Path(description="The recovery id (32 hex)")],
) -> RecoveryOut:
    """How far the recovery has come: ``queued``, ``skipped``, ``status``."""
    item = recovery.get_recovery(_tenant(), subscription_id, recovery_id, allowed=_scope())
    return RecoveryOut.model_validate(recovery.to_resource(item))


@app.get(f"{BASE}/openapi.json", include_in_schema=False)
def openapi_document() -> Response[Any]:
    """The OpenAPI document (public; paths carry the ``/whisperer`` prefix)."""
    document = app.get_openapi_json_schema(**openapi_settings())
    return Response(status_code=200, content_type=content_types.APPLICATION_JSON, body=document)


def _body_bytes(event: dict[str, Any]) -> bytes:
    body = event.get("body") or ""
    if event.get("isBase64Encoded"):
        try:
            return base64.b64decode(body)
        except (binascii.Error, ValueError):
            return body.encode("utf-8", "replace")
    return str(body).encode("utf-8", "surrogatepass")


def _gate(event: dict[str, Any]) -> ServiceError | None:
    """Body checks that must happen before Powertools parses anything."""
    if str(event.get("httpMethod", "")).upper() not in _BODY_METHODS:
        return None
    body = _body_bytes(event)
    limit = get_settings().max_body_bytes
    if len(body) > limit:
        return PayloadTooLarge(f"request body is {len(body)} bytes; the limit is {limit} bytes")
    headers = {k.lower(): v for k, v in (event.get("headers") or {}).items()}
    content_type = (headers.get("content-type") or "").split(";", 1)[0].strip().lower()
    if not body.strip():
        return None
    if content_type and content_type != "application/json":
        return UnsupportedMediaType(
            f"Content-Type {content_type!r} is not supported; send application/json",
            {"body": ["send Content-Type: application/json"]},
        )
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return UnsupportedMediaType(
            "request body is not UTF-8 (compressed bodies are not accepted)",
            {"body": ["send UTF-8 JSON, uncompressed"]},
        )
    return _check_json(text)


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _check_json(text: str) -> ServiceError | None:
    """Parse the body once with JSON's own limits before Powertools does.

    Refused with a 400 ``invalid_json``: syntax errors (with line and
    column), ``NaN``/``Infinity`` (not JSON, RFC 8259 §6), integers over
    Python's 4,300-digit conversion limit and nesting deep enough to exhaust
    the parser's recursion (both would otherwise surface as a 5xx).
    """
    try:
        json.loads(text, parse_constant=_reject_constant)
    except json.JSONDecodeError as err:
        detail = (
            f"Malformed JSON at line {err.lineno} column {err.colno} (char {err.pos}): {err.msg}"
        )
    except RecursionError:
        detail = "Malformed JSON: nested too deeply"
    except ValueError as err:
        detail = f"Malformed JSON: {err}"
    else:
        return None
    return InvalidJson(detail, {"body": [detail]})


def _lowercase_content_type(event: dict[str, Any]) -> None:
    """Media types are case-insensitive (RFC 9110 §8.3.1); Powertools compares them as is."""
    for key in ("headers", "multiValueHeaders"):
        headers = event.get(key) or {}
        for name in list(headers):
            if name.lower() == "content-type":
                value = headers[name]
                headers[name] = (
                    [v.lower() for v in value] if isinstance(value, list) else value.lower()
                )


def resolve(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Answer one API Gateway REST (v1) proxy event with a proxy response dict."""
    refused = _gate(event)
    if refused is None:
        _lowercase_content_type(event)
    if refused is not None:
        return {
            "statusCode": refused.status,
            "headers": {"Content-Type": content_types.APPLICATION_JSON},
            "multiValueHeaders": {},
            "body": json.dumps(refused.as_body(), ensure_ascii=False, separators=(",", ":")),
            "isBase64Encoded": False,
        }
    _enable_docs(event)
    return app.resolve(event, context)
