"""Fan-out: one OMS event → one delivery per active matching subscription.

Plain module (the router handler parses SQS; the local stack calls the same
handler). Steps for one EventBridge event (DESIGN §1, §2, §4):

1. parse it; events that are not webhook events (a detail-type outside the
   catalogue, a Detail that is not a JSON object) are :class:`Unroutable`:
   the caller logs them with a metric and acknowledges them;
2. store the Detail once per event;
3. query the sparse ``by-event-type`` index (active subscriptions of that
   type, every tenant, paginated; never a Scan) and keep those whose payload
   filter passes (:func:`apply_filters`, DESIGN §11: a filter that fails on
   this payload is no match for its own subscription only);
4. create each delivery idempotently and send one SQS message per delivery
   that is still pending (``SendMessageBatch``, 10 per call, each message
   carrying the event's Detail when it fits, :mod:`delivery_message`; failed
   entries retried, then an error so the whole event is processed again: creation is
   idempotent and the dispatcher skips what is already delivered).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from oms_webhooks.delivery import message as delivery_message
from oms_webhooks.delivery.store import PENDING, create_delivery, known_of
from oms_webhooks.routing import events_store
from oms_webhooks.routing.event_json import (
    MAX_ENTRY_BYTES,
    MAX_NESTING_DEPTH,
    dumps_compact,
    entry_size,
    nesting_depth,
)
from oms_webhooks.routing.event_types import EVENT_TYPES
from oms_webhooks.routing.filters import (
    MAX_EVALUATION_STEPS,
    MAX_TENANT_STEPS_PER_EVENT,
    FilterOutcome,
)
from oms_webhooks.routing.filters import evaluate as evaluate_filter
from oms_webhooks.settings import get_settings
from oms_webhooks.storage.models import DeliveryModel, SubscriptionModel
from oms_webhooks.subscriptions.store import get_store as subscription_store

#: EventBridge's entry size limit in bytes (PutEvents, 256 KB), DESIGN §8.
MAX_EVENT_BYTES = MAX_ENTRY_BYTES
#: SendMessageBatch takes at most 10 entries (SQS limit).
SQS_BATCH = 10
_SEND_TRIES = 3
#: Delivery records written at once by one router invocation.
CREATE_CONCURRENCY = 8


class Unroutable(ValueError):
    """Not a webhook event: acknowledged with a log line and a metric, not retried."""


class OversizeEvent(ValueError):
    """An event larger than EventBridge's 256 KB entry: left to the ingress DLQ (alarmed)."""


class SendFailed(RuntimeError):
    """Some delivery messages could not be sent after retries; the event is retried."""


@dataclass(frozen=True)
class OmsEvent:
    """An OMS event as EventBridge delivered it."""

    event_id: str
    event_type: str
    time: str
    detail: dict[str, Any]
    detail_json: str


@dataclass(frozen=True)
class FilterFailure:
    """A subscription whose filter failed on an event's payload (no delivery for it)."""

    subscription_id: str
    tenant: str
    error: str


@dataclass(frozen=True)
class FanOutResult:
    """What one event produced: deliveries created and messages sent.

    ``matched`` counts the subscriptions that passed their filters;
    ``filtered_out`` those that did not (``filter_failures`` included).
    """

    event_id: str
    matched: int
    created: int
    sent: int
    filtered_out: int = 0
    filter_failures: tuple[FilterFailure, ...] = ()


_TENANT_BUDGET_SPENT = (
    f"this tenant's filters used their {MAX_TENANT_STEPS_PER_EVENT} steps for this event"
)


def apply_filters(
    subscriptions: Iterable[SubscriptionModel], payload: Any
) -> tuple[list[SubscriptionModel], int, list[FilterFailure]]:
    """The subscriptions whose payload filter passes on ``payload`` (DESIGN §11).

    A subscription without a filter passes. Never raises for a filter: one
    that fails on this payload (any error) is no match and is reported in
    the failures, for the caller to log with the subscription id and count.
    All of one tenant's filters together may take
    :data:`~oms_webhooks.routing.filters.MAX_TENANT_STEPS_PER_EVENT` steps on one
    event (in subscription order); past that its remaining filters fail
    without running, so one tenant's many heavy filters cannot slow the
    router for the others (DESIGN §9).

    Returns:
        ``(passed, filtered_out, failures)``: the passing subscriptions in
        order, how many did not pass, and the failures among those.
    """
    passed: list[SubscriptionModel] = []
    failures: list[FilterFailure] = []
    filtered_out = 0
    left: dict[str, int] = {}
    for subscription in subscriptions:
        tenant_left = left.get(subscription.tenant, MAX_TENANT_STEPS_PER_EVENT)
        if not subscription.filter:
            outcome = FilterOutcome(True)
        elif tenant_left <= 0:
            outcome = FilterOutcome(False, _TENANT_BUDGET_SPENT)
        else:
            outcome = evaluate_filter(subscription.filter, payload, budget=tenant_left)
            left[subscription.tenant] = tenant_left - outcome.steps
            if outcome.error is not None and outcome.steps > tenant_left < MAX_EVALUATION_STEPS:
                outcome = FilterOutcome(False, _TENANT_BUDGET_SPENT)
        if outcome.matched:
            passed.append(subscription)
            continue
        filtered_out += 1
        if outcome.error is not None:
            failures.append(FilterFailure(subscription.id, subscription.tenant, outcome.error))
    return passed, filtered_out, failures


def parse_event(body: str) -> OmsEvent:
    """Parse the ingress message body (the EventBridge event JSON).

    The event is sized as EventBridge sizes a ``PutEvents`` entry
    (:func:`oms_webhooks.routing.event_json.entry_size`: ``source``, ``detail-type``,
    the Detail re-serialised compactly with ``ensure_ascii=False``, and each
    of ``resources``), never as the queue message, where EventBridge escapes
    every non-ASCII character (an emoji is 12 bytes there, 4 in the entry).
    ``Time`` is not counted: EventBridge fills it in when the publisher did
    not give it, so the router cannot tell, and an event EventBridge
    accepted is never refused here for it. A lone surrogate escape in the
    Detail (``"\\ud800"``) stays an escape in ``detail_json``.

    Raises:
        Unroutable: not JSON, no id, an unknown detail-type, a Detail that
            is not a JSON object.
        OversizeEvent: the event is over :data:`MAX_EVENT_BYTES`.
    """
    try:
        event = json.loads(body)
    except json.JSONDecodeError as exc:
        raise Unroutable(f"ingress message is not JSON: {exc.msg}") from None
    except (ValueError, RecursionError) as exc:  # over-long integers, deep nesting
        raise Unroutable(f"ingress message is not usable JSON: {type(exc).__name__}") from None
    if not isinstance(event, dict) or not isinstance(event.get("id"), str) or not event["id"]:
        raise Unroutable("ingress message is not an EventBridge event")
    event_type = event.get("detail-type")
    if event_type not in EVENT_TYPES:
        raise Unroutable(f"detail-type {event_type!r} is not in the catalogue")
    detail = event.get("detail")
    if isinstance(detail, str):  # a Detail string EventBridge could not parse as JSON
        try:
            detail = json.loads(detail)
        except json.JSONDecodeError:
            raise Unroutable("Detail is not JSON") from None
    if not isinstance(detail, dict):
        raise Unroutable("Detail is not a JSON object")
    depth = nesting_depth(detail)
    if depth > MAX_NESTING_DEPTH:
        raise Unroutable(
            f"Detail nests {depth} levels deep; at most {MAX_NESTING_DEPTH} are routed"
        )
    try:
        detail_json = dumps_compact(detail)
    except ValueError:
        raise Unroutable("Detail holds NaN or Infinity, which JSON does not have") from None
    except RecursionError:
        raise Unroutable("Detail is nested too deeply to re-serialise") from None
    resources = event.get("resources")
    size = entry_size(
        source=str(event.get("source") or ""),
        detail_type=str(event_type),
        detail=detail_json,
        resources=[str(r) for r in resources] if isinstance(resources, list) else (),
    )
    if size > MAX_EVENT_BYTES:
        raise OversizeEvent(
            f"event of {size} bytes (as EventBridge sizes an entry) is over the "
            f"{MAX_EVENT_BYTES}-byte limit"
        )
    return OmsEvent(
        event_id=event["id"],
        event_type=str(event_type),
        time=str(event.get("time") or ""),
        detail=detail,
        detail_json=detail_json,
    )


_cache_lock = threading.Lock()
_cache: dict[str, tuple[float, list[SubscriptionModel]]] = {}


def matching_subscriptions(event_type: str) -> Iterable[SubscriptionModel]:
    """Active subscriptions of ``event_type`` in every tenant (sparse GSI, paginated).

    Kept for ``router_cache_seconds`` per event type (DESIGN §8: only 18 event
    types, so the index's partitions are hot at high event rates). A new
    subscription may miss events published within that window; an
    unsubscribe is honoured at once, since the dispatcher re-reads the
    subscription before every attempt. 0 turns the cache off.
    """
    ttl = get_settings().router_cache_seconds
    if ttl <= 0:
        return subscription_store().active_of_type(event_type)
    now = time.monotonic()
    with _cache_lock:
        cached = _cache.get(event_type)
    if cached is not None and cached[0] > now:
        return cached[1]
    items = list(subscription_store().active_of_type(event_type))
    with _cache_lock:
        _cache[event_type] = (now + ttl, items)
    return items


def _send_batches(
    sqs: Any,
    queue_url: str,
    uuids: Sequence[str],
    detail_json: str | None = None,
    known: Sequence[delivery_message.Known | None] | None = None,
) -> int:
    """Send one delivery message per uuid, carrying the event's Detail when it fits,
    and the delivery's unchanging fields (``known``, in the order of ``uuids``)."""
    sent = 0
    knowns = list(known) if known is not None else [None] * len(uuids)
    for bodies in delivery_message.batches(
        [delivery_message.encode(u, detail_json, k) for u, k in zip(uuids, knowns, strict=True)]
    ):
        entries = [{"Id": str(n), "MessageBody": body} for n, body in enumerate(bodies)]
        for _ in range(_SEND_TRIES):
            response = sqs.send_message_batch(QueueUrl=queue_url, Entries=entries)
            sent += len(response.get("Successful", []))
            failed_ids = {f["Id"] for f in response.get("Failed", [])}
            entries = [e for e in entries if e["Id"] in failed_ids]
            if not entries:
                break
        if entries:
            raise SendFailed(f"{len(entries)} delivery messages could not be sent")
    return sent


def fan_out(event: OmsEvent, *, sqs: Any, queue_url: str) -> FanOutResult:
    """Create and enqueue the deliveries of ``event``.

    Args:
        event: a parsed OMS event.
        sqs: a boto3 SQS client.
        queue_url: the delivery queue's URL.

    Raises:
        SendFailed: some messages could not be sent (retry the event).
    """
    events_store.get_store().put_payload(
        event.event_id, event.event_type, event.time, event.detail_json
    )
    matched = created = 0
    pending: list[str] = []
    known: list[delivery_message.Known | None] = []

    def create(subscription: SubscriptionModel) -> tuple[DeliveryModel, bool]:
        return create_delivery(
            subscription,
            event_id=event.event_id,
            event_type=event.event_type,
            event_time=event.time,
        )

    passed, filtered_out, failures = apply_filters(
        matching_subscriptions(event.event_type), event.detail
    )
    # Conditional puts cannot be batched (BatchWriteItem has no conditions):
    # run a few at once so a type with many subscribers stays fast. One
    # subscriber (the usual case) is created here: no thread per event.
    if len(passed) <= 1:
        created_deliveries = [create(s) for s in passed]
    else:
        with ThreadPoolExecutor(max_workers=CREATE_CONCURRENCY) as pool:
            created_deliveries = list(pool.map(create, passed))
    for delivery, is_new in created_deliveries:
        matched += 1
        created += is_new
        # An existing record with no attempt yet may be one whose message a
        # crashed run never sent: send it (the dispatcher drops duplicates).
        if is_new or (delivery.status == PENDING and not delivery.attempt_count):
            pending.append(delivery.pk)
            known.append(known_of(delivery))
    sent = _send_batches(sqs, queue_url, pending, event.detail_json, known)
    return FanOutResult(event.event_id, matched, created, sent, filtered_out, tuple(failures))
