"""``/hook_events/``: the delivery log, one delivery with its attempts, a manual resend.

Reads go to :mod:`oms_webhooks.delivery.log` (scoped to the caller's tenant
and token), a held delivery says why (:mod:`oms_webhooks.delivery.retry.held`);
a resend is :func:`oms_webhooks.delivery.manual.resend`, one attempt now, once
:func:`~oms_webhooks.delivery.manual.load_for_resend` found the delivery.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

from aws_lambda_powertools.event_handler import Response, content_types
from aws_lambda_powertools.event_handler.openapi.params import Body, Path, Query
from aws_lambda_powertools.event_handler.router import APIGatewayRouter

from oms_webhooks.api import caller, operator_limits, query
from oms_webhooks.api.delivery_schemas import (
    AttemptAnswerOut,
    DeliveryDetailOut,
    DeliveryOut,
    DeliveryPage,
    ResendIn,
)
from oms_webhooks.api.openapi import (
    AUTH_ERRORS,
    BAD_INPUT,
    BODY_ERRORS,
    DELIVERY_NOT_FOUND,
    TOO_MANY_SENDS,
    error_response,
    responses,
)
from oms_webhooks.api.query import IsoDatetime
from oms_webhooks.api.routes import BASE
from oms_webhooks.api.routes.sends import attempt_answer, send_options
from oms_webhooks.delivery import log as delivery_log
from oms_webhooks.delivery import manual, operational_events
from oms_webhooks.delivery.retry import held
from oms_webhooks.observability import service_logger, service_metrics

logger = service_logger(child=True)
metrics = service_metrics()
router = APIGatewayRouter()

_RESEND_REFUSED = error_response(
    409, "Already delivered (without force), or the subscription is gone"
)

#: A delivery id in a path.
DeliveryUuid = Annotated[str, Path(description="32 lowercase hex")]


@router.get(
    "/hook_events/",
    summary="The delivery log",
    tags=["deliveries"],
    responses=responses(200, "One page, newest first", BAD_INPUT, AUTH_ERRORS),
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
    tenant = caller.tenant(router.current_event)
    query.only_query_params(
        router.current_event,
        "webhook",
        "event_type",
        "delivered",
        "response_http_status",
        "created_date__gte",
        "created_date__lte",
        "limit",
        "cursor",
    )
    event_type = query.event_type_filter(event_type)
    bounds = [query.utc(created_date__gte), query.utc(created_date__lte)]
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
        allowed=caller.scope(router.current_event),
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
        next=query.page_path(page.next_cursor, params, f"{BASE}/hook_events/"),
    )


@router.get(
    "/hook_events/<delivery_uuid>/",
    summary="One delivery with its latest 100 attempts",
    tags=["deliveries"],
    responses=responses(
        200, "The delivery", AUTH_ERRORS, DELIVERY_NOT_FOUND, model=DeliveryDetailOut
    ),
)
def get_delivery(delivery_uuid: DeliveryUuid) -> Response[Any]:
    """The delivery, its request payload and its latest 100 attempts, if it is the caller's."""
    tenant = caller.tenant(router.current_event)
    item = delivery_log.get_delivery(
        tenant, delivery_uuid, allowed=caller.scope(router.current_event)
    )
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


@router.post(
    "/hook_events/<delivery_uuid>/retry/",
    summary="Resend a delivery now",
    tags=["deliveries"],
    responses=responses(
        200,
        "Sent; the partner's answer, whatever it was",
        *(BAD_INPUT, AUTH_ERRORS, DELIVERY_NOT_FOUND, _RESEND_REFUSED, TOO_MANY_SENDS, BODY_ERRORS),
    ),
)
def resend_delivery(
    delivery_uuid: DeliveryUuid,
    body: Annotated[ResendIn | None, Body()] = None,
) -> AttemptAnswerOut:
    """Send the delivery once now (one attempt, bounded timeouts) and record it."""
    force = body.force if body is not None else False
    tenant = caller.tenant(router.current_event)
    # 404 and 409 before a slot is taken: a slot is for an attempt about to be made.
    prepared = manual.load_for_resend(
        tenant, delivery_uuid, force=force, allowed=caller.scope(router.current_event)
    )
    with operator_limits.operator_slot(tenant):
        outcome = manual.resend(prepared, send_options())
    # Flushed at once: the API emits no other metric (no log_metrics per request).
    operational_events.publish_reported(
        outcome.notices, delivery_uuid=delivery_uuid, metrics=metrics, log=logger, flush=True
    )
    result = outcome.result
    assert result is not None  # a resend always makes its attempt
    logger.info("manual resend", extra={"delivery_uuid": delivery_uuid, "outcome": outcome.kind})
    return attempt_answer(result)
