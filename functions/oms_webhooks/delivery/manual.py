"""The API's side of delivery: a ping, and an operator's manual resend.

A ping records nothing; a resend takes the same claim as an automatic
attempt (:mod:`oms_webhooks.delivery.claim`), counts as a probe of the
target's circuit breaker and is recorded by :func:`oms_webhooks.delivery.pipeline.record`.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import replace
from datetime import UTC, datetime

from oms_webhooks.delivery import store as deliveries
from oms_webhooks.delivery.attempt import attempt, send_redacted, signed_headers
from oms_webhooks.delivery.claim import claim, lease_seconds
from oms_webhooks.delivery.outcome import Outcome, Prepared
from oms_webhooks.delivery.pipeline import record
from oms_webhooks.delivery.request.envelope import build_envelope
from oms_webhooks.delivery.request.sender import AttemptResult, SendOptions
from oms_webhooks.delivery.retry import breaker
from oms_webhooks.errors import Conflict, NotFound
from oms_webhooks.routing import events_store
from oms_webhooks.storage.models import SubscriptionModel
from oms_webhooks.subscriptions import store as subscription_store

#: The event type of a ping (``POST /whisperer/hooks/{id}/ping/``); not in the catalogue.
PING_EVENT_TYPE = "ping"


def ping(subscription: SubscriptionModel, options: SendOptions) -> AttemptResult:
    """Send a signed ``ping`` event (payload ``{}``) to the subscription now.

    Nothing is recorded: a ping checks a partner's endpoint and signature
    code before real events flow. Works for an inactive subscription.
    """
    msg_id = uuid.uuid4().hex
    body = build_envelope(
        event_type=PING_EVENT_TYPE,
        delivery_uuid=msg_id,
        event_time=datetime.now(UTC).isoformat().replace("+00:00", "Z"),
        payload={},
    )
    headers = signed_headers(subscription, msg_id, PING_EVENT_TYPE, body, int(time.time()))
    return send_redacted(subscription, body, headers, options)


class ResendRefused(Conflict):
    """409: a manual resend that cannot be made (delivered without force, subscription gone)."""


def load_for_resend(
    tenant: str, uid: str, *, force: bool, allowed: frozenset[str] | None = None
) -> Prepared:
    """Load delivery ``uid`` of ``tenant`` for an operator's resend.

    Works for an inactive subscription (an operator testing before
    re-enabling it), not for a deleted one.

    Raises:
        NotFound: no such delivery for this tenant.
        ResendRefused: already delivered (without ``force``), or the
            subscription or the event payload is gone.
    """
    delivery = deliveries.get_store().get(uid)
    if delivery is None or delivery.tenant != tenant:
        raise NotFound("delivery not found")
    if allowed is not None and delivery.event_type not in allowed:
        raise NotFound("delivery not found")
    if delivery.status == deliveries.DELIVERED and not force:
        raise ResendRefused(
            'the delivery was already delivered; send {"force": true} to resend it',
            {"force": ["required to resend a delivered delivery"]},
        )
    subscription = subscription_store.get_store().get(tenant, delivery.subscription_id)
    if subscription is None:
        raise ResendRefused("the subscription of this delivery was deleted")
    payload = events_store.get_store().get_payload(delivery.event_id)
    if payload is None:
        raise ResendRefused("the event payload of this delivery has expired")
    return Prepared(delivery, subscription, payload)


def resend(prepared: Prepared, options: SendOptions) -> Outcome:
    """Send a delivery loaded by :func:`load_for_resend` once now and record the attempt.

    Two steps so that the API checks the delivery (404, 409) before it takes
    an operator slot for the attempt (:mod:`oms_webhooks.api.operator_limits`).

    Raises:
        Conflict: another attempt of this delivery is being recorded at this moment.
    """
    if not claim(prepared, manual=True, lease_seconds=lease_seconds(options)):
        raise Conflict("another attempt of this delivery is in progress; retry in a moment")
    result = attempt(prepared, options)
    # A resend counts as a probe of the target's circuit breaker (DESIGN §9).
    keys = breaker.keys_for(prepared.subscription.target_url, prepared.delivery.tenant)
    opened = breaker.report(keys, result, probe=True)
    return replace(record(prepared, result, manual=True), circuit_opened=opened)
