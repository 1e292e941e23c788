"""One attempt: build the envelope, sign it, POST it, redact what came back.

(:mod:`oms_webhooks.delivery.request.sender`: timeouts, no redirects, send-time URL guard.)
:func:`watched_attempt` also marks a target slow or fast for the dispatcher's
lanes (DESIGN §9).
"""

from __future__ import annotations

import json
import threading
import time

from oms_webhooks.delivery.outcome import Prepared
from oms_webhooks.delivery.request import alarms
from oms_webhooks.delivery.request.envelope import build_envelope
from oms_webhooks.delivery.request.sender import AttemptResult, SendOptions, send
from oms_webhooks.delivery.request.signing import signature_headers
from oms_webhooks.delivery.retry import breaker
from oms_webhooks.settings import get_settings
from oms_webhooks.storage.models import SubscriptionModel
from oms_webhooks.subscriptions.sealing import unseal


def build_request(prepared: Prepared, *, timestamp: int) -> tuple[bytes, dict[str, str]]:
    """The signed body and headers of an attempt (DESIGN §4: signature headers, then extras)."""
    delivery, subscription = prepared.delivery, prepared.subscription
    body = build_envelope(
        event_type=delivery.event_type,
        delivery_uuid=delivery.pk,
        event_time=delivery.event_time,
        payload=json.loads(prepared.payload.detail),
    )
    return body, signed_headers(subscription, delivery.pk, delivery.event_type, body, timestamp)


def signed_headers(
    subscription: SubscriptionModel, msg_id: str, event_type: str, body: bytes, timestamp: int
) -> dict[str, str]:
    """Signature headers (current secret, and the previous one during a rotation's
    grace period), then the subscription's additional headers (DESIGN §4)."""
    secret = unseal(subscription.sealed_secret_key) if subscription.sealed_secret_key else None
    previous: list[str] = []
    expires = subscription.previous_secret_expires_at
    if subscription.sealed_previous_secret_key and expires and float(expires) > time.time():
        previous.append(unseal(subscription.sealed_previous_secret_key))
    headers = signature_headers(
        secret=secret,
        msg_id=msg_id,
        timestamp=timestamp,
        body=body,
        event_type=event_type,
        previous_secrets=previous,
    )
    headers.update(subscription.additional_headers or {})
    return headers


def basic_auth(subscription: SubscriptionModel) -> tuple[str, str] | None:
    """``(username, password)`` of the subscription's basic auth, or None."""
    if subscription.auth is None:
        return None
    sealed = subscription.auth.sealed_password
    return subscription.auth.username, unseal(sealed) if sealed else ""


def attempt(prepared: Prepared, options: SendOptions) -> AttemptResult:
    """POST the delivery once; never raises for what the partner or network does."""
    body, headers = build_request(prepared, timestamp=int(time.time()))
    return send_redacted(prepared.subscription, body, headers, options)


def send_redacted(
    subscription: SubscriptionModel, body: bytes, headers: dict[str, str], options: SendOptions
) -> AttemptResult:
    """:func:`send`, with the subscription's own secrets redacted from what came back
    (a partner echoing the request: :mod:`oms_webhooks.delivery.request.redaction`)."""
    signing = [
        unseal(sealed)
        for sealed in (subscription.sealed_secret_key, subscription.sealed_previous_secret_key)
        if sealed
    ]
    return send(
        subscription.target_url,
        body,
        headers,
        auth=basic_auth(subscription),
        options=options,
        signing_secrets=signing,
    )


def watched_attempt(prepared: Prepared, options: SendOptions, keys: breaker.Keys) -> AttemptResult:
    """:func:`attempt`, marking the target slow once it runs past ``slow_attempt_seconds``.

    A timeout marks it slow too; a quick answer lifts a slow mark (DESIGN §9).
    The mark's alarm shares the process's one alarm thread
    (:mod:`oms_webhooks.delivery.request.alarms`) with the transport deadlines.
    """
    threshold = get_settings().slow_attempt_seconds

    def still_running() -> None:
        # The mark is a DynamoDB write: off the alarm thread, which other
        # attempts' deadlines share (a thread only for an attempt that is slow).
        threading.Thread(target=breaker.mark_slow, args=(keys,), daemon=True).start()

    alarm = alarms.schedule(threshold, still_running)
    try:
        with breaker.in_flight(keys):
            result = attempt(prepared, options)
    finally:
        alarm.cancel()
    if result.failure == "timeout":
        breaker.mark_slow(keys)
    elif result.status_code is not None and result.response_time_ms < threshold * 1000:
        breaker.note_fast(keys)
        breaker.clear_slow(keys)
    return result
