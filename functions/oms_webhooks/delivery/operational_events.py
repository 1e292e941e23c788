"""Operational events: what the service tells the OMS team, on the same bus (DESIGN §10).

Sent with ``Source`` = ``operational_source`` (default ``oms-webhooks``; the
CDK app refuses it equal to the OMS's ``event_source``, so the ingress rule,
which matches only the OMS source, never routes them to partners):

* ``webhook.subscription.disabled`` — ``{"subscription", "tenant",
  "event_type", "target_url" (scheme, host, port and path: no query, no
  user info), "reason", "failing_since", "disabled_at"}``;
* ``webhook.delivery.failed`` (a delivery ended ``failed``) — ``{"delivery",
  "subscription", "tenant", "event_type", "event_id", "attempts" (a count),
  "response_http_status", "error" (the last error, ≤ 256 characters)}``;
* ``webhook.delivery.succeeded``, only when ``emit_delivery_succeeded`` is
  true (the whisperer ``callback``; it adds PutEvents' $1 per million) —
  the same fields as ``failed`` (``error`` null).

Times are ISO 8601 UTC with ``Z``. Nothing secret goes out: no secret, header
value, response excerpt or payload. They go through the PutEvents core
(:mod:`oms_webhooks.routing.event_bus`: batching, sizes, retry of failed entries);
:func:`publish` never raises, so a failure to publish never fails or repeats
a delivery: it returns what failed; :func:`publish_reported` adds the log
line and the ``OperationalEventNotPublished`` metric both callers (the
dispatcher and the API's resend) report it with.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

from oms_webhooks import names
from oms_webhooks.aws_clients import client
from oms_webhooks.routing import event_bus
from oms_webhooks.settings import get_settings

if TYPE_CHECKING:
    from aws_lambda_powertools import Logger, Metrics

logger = logging.getLogger(__name__)

SUBSCRIPTION_DISABLED = "webhook.subscription.disabled"
DELIVERY_FAILED = "webhook.delivery.failed"
DELIVERY_SUCCEEDED = "webhook.delivery.succeeded"
#: Every operational event type.
OPERATIONAL_EVENT_TYPES = (SUBSCRIPTION_DISABLED, DELIVERY_FAILED, DELIVERY_SUCCEEDED)
#: Most characters of the last error in ``webhook.delivery.failed``.
MAX_ERROR_CHARS = 256
#: PutEvents calls per entry in all (few: a delivery's thread waits for them).
MAX_ATTEMPTS = 3


@dataclass(frozen=True)
class OperationalEvent:
    """One operational event: its ``DetailType`` and ``Detail`` (a JSON object)."""

    detail_type: str
    detail: dict[str, Any]


def public_url(url: str) -> str:
    """``url`` without its query, fragment and user info (they may carry credentials)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def _iso(moment: datetime | None) -> str | None:
    """``moment`` as ISO 8601 UTC with ``Z`` (seconds), or None."""
    if moment is None:
        return None
    return moment.astimezone(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def subscription_disabled(
    *,
    subscription_id: str,
    tenant: str,
    event_type: str,
    target_url: str,
    reason: str,
    failing_since: datetime | None,
    disabled_at: datetime,
) -> OperationalEvent:
    """The ``webhook.subscription.disabled`` event."""
    return OperationalEvent(
        SUBSCRIPTION_DISABLED,
        {
            "subscription": subscription_id,
            "tenant": tenant,
            "event_type": event_type,
            "target_url": public_url(target_url),
            "reason": reason,
            "failing_since": _iso(failing_since),
            "disabled_at": _iso(disabled_at),
        },
    )


def delivery_ended(
    *,
    delivered: bool,
    delivery: str,
    subscription_id: str,
    tenant: str,
    event_type: str,
    event_id: str,
    attempts: int,
    response_http_status: int | None,
    error: str | None,
) -> OperationalEvent:
    """``webhook.delivery.succeeded`` or ``webhook.delivery.failed`` (error cut to 256 chars)."""
    return OperationalEvent(
        DELIVERY_SUCCEEDED if delivered else DELIVERY_FAILED,
        {
            "delivery": delivery,
            "subscription": subscription_id,
            "tenant": tenant,
            "event_type": event_type,
            "event_id": event_id,
            "attempts": attempts,
            "response_http_status": response_http_status,
            "error": None if delivered or error is None else error[:MAX_ERROR_CHARS],
        },
    )


def wanted(event: OperationalEvent) -> bool:
    """Whether ``event`` is sent under the settings (``succeeded`` only when enabled)."""
    return event.detail_type != DELIVERY_SUCCEEDED or get_settings().emit_delivery_succeeded


def publish(events: Sequence[OperationalEvent], *, events_api: Any = None) -> list[str]:
    """Put ``events`` on the bus; never raises.

    Returns:
        The detail types of the events that could not be published (empty
        when all went out); the reason is logged.
    """
    settings = get_settings()
    events = [e for e in events if wanted(e)]
    if not events:
        return []
    entries = [
        {
            "EventBusName": settings.bus_name,
            "Source": settings.operational_source,
            "DetailType": e.detail_type,
            "Detail": json.dumps(e.detail, ensure_ascii=False, separators=(",", ":")),
        }
        for e in events
    ]
    try:
        event_bus.put_entries(
            entries,
            client=events_api if events_api is not None else client("events"),
            max_attempts=MAX_ATTEMPTS,
        )
    except event_bus.PublishFailed as exc:
        logger.error("operational events not published: %s", exc)
        return [entries[f.index]["DetailType"] for f in exc.failed]
    except Exception:  # never let the notice fail the delivery
        logger.exception("operational events not published")
        return [e.detail_type for e in events]
    return []


#: The metric (Count) of an outcome whose operational events could not be published.
NOT_PUBLISHED_METRIC = names.METRIC_OPERATIONAL_EVENT_NOT_PUBLISHED


def publish_reported(
    events: Sequence[OperationalEvent],
    *,
    delivery_uuid: str,
    metrics: Metrics,
    log: Logger,
    flush: bool = False,
) -> list[str]:
    """:func:`publish`, logging and counting (:data:`NOT_PUBLISHED_METRIC`) what failed.

    The one way the dispatcher and the API's resend report a failure to
    publish (DESIGN §10); the delivery is unaffected. ``flush``: write the
    metric at once as an EMF line (the API, which emits no other metric and
    has no ``log_metrics`` around its requests). Never raises.

    Returns:
        The detail types that could not be published (empty when all went out).
    """
    if not events:
        return []
    failed = publish(events)
    if failed:
        from aws_lambda_powertools.metrics import MetricUnit

        metrics.add_metric(name=NOT_PUBLISHED_METRIC, unit=MetricUnit.Count, value=1)
        if flush:
            metrics.flush_metrics()
        log.error(
            "operational events not published; the delivery is unaffected",
            extra={"delivery_uuid": delivery_uuid, "detail_types": failed},
        )
    return failed
