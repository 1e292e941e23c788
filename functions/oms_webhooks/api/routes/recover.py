"""``/hooks/<id>/recover/``: send again the events a subscription missed, and its progress.

The work is :mod:`oms_webhooks.routing.recovery`'s: the API records the
recovery and queues it; the recoverer enqueues the events in the background.
"""

from __future__ import annotations

from typing import Annotated

from aws_lambda_powertools.event_handler.openapi.params import Body, Path
from aws_lambda_powertools.event_handler.router import APIGatewayRouter

from oms_webhooks.api import caller
from oms_webhooks.api.delivery_schemas import RecoverAcceptedOut, RecoverIn, RecoveryOut
from oms_webhooks.api.openapi import (
    AUTH_ERRORS,
    BAD_INPUT,
    BODY_ERRORS,
    NOT_FOUND,
    error_response,
    responses,
)
from oms_webhooks.api.routes.subscriptions import SubscriptionId
from oms_webhooks.aws_clients import client as aws_client
from oms_webhooks.observability import service_logger
from oms_webhooks.routing import recovery
from oms_webhooks.settings import get_settings

logger = service_logger(child=True)
router = APIGatewayRouter()
_INACTIVE = error_response(409, "The subscription is inactive (re-activate it first)")


@router.post(
    "/hooks/<subscription_id>/recover/",
    summary="Recover the events a subscription missed in a window",
    tags=["subscriptions"],
    status_code=202,
    responses=responses(
        202,
        "Accepted; the recovery runs in the background",
        *(BAD_INPUT, AUTH_ERRORS, NOT_FOUND, _INACTIVE, BODY_ERRORS),
    ),
)
def recover_subscription(
    subscription_id: SubscriptionId,
    body: Annotated[RecoverIn, Body()],
) -> RecoverAcceptedOut:
    """Send again every kept event of the window the subscription has not received.

    Each event keeps its delivery id (its ``webhook-id``): a delivery that
    failed or was cancelled is re-opened, a missing one created, a pending or
    delivered one skipped, so recovering twice sends nothing twice. They are
    enqueued in the background at ``OMS_WEBHOOKS_RECOVER_RATE`` per second.
    """
    item = recovery.start(
        caller.tenant(router.current_event),
        subscription_id,
        body.since,
        body.until,
        sqs=aws_client("sqs"),
        queue_url=get_settings().recovery_queue_url,
        allowed=caller.scope(router.current_event),
    )
    logger.info("recovery started", extra={"subscription_id": subscription_id})
    return RecoverAcceptedOut(
        detail="recovery started", recovery=item.recovery_id, queued=int(item.queued or 0)
    )


@router.get(
    "/hooks/<subscription_id>/recover/<recovery_id>/",
    summary="Progress of a recovery",
    tags=["subscriptions"],
    responses={**AUTH_ERRORS, **error_response(404, "No such subscription or recovery")},
)
def get_recovery(
    subscription_id: SubscriptionId,
    recovery_id: Annotated[str, Path(description="The recovery id (32 hex)")],
) -> RecoveryOut:
    """How far the recovery has come: ``queued``, ``skipped``, ``status``."""
    item = recovery.get_recovery(
        caller.tenant(router.current_event),
        subscription_id,
        recovery_id,
        allowed=caller.scope(router.current_event),
    )
    return RecoveryOut.model_validate(recovery.to_resource(item))
