"""The dispatcher's SQS batch: delivery messages → one signed POST per due delivery.

The records of a batch run concurrently (Powertools ``AsyncBatchProcessor``,
each record's blocking work in a thread under its own connect/read
timeouts), so one slow or dead endpoint never holds back the others
(DESIGN §5). A record is reported in ``batchItemFailures`` when its message
must come back: a retry or a hop (after ``ChangeMessageVisibility`` set how
long it stays hidden) or an unexpected error. An all-failed batch is not a
function error (``raise_on_entire_batch_failure=False``). Each message goes
through :func:`oms_webhooks.delivery.pipeline.dispatch`.
"""

from __future__ import annotations

import asyncio
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import (
    AsyncBatchProcessor,
    EventType,
    async_process_partial_response,
)
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from oms_webhooks import names
from oms_webhooks.aws_clients import client
from oms_webhooks.delivery import message as delivery_message
from oms_webhooks.delivery import operational_events, pipeline
from oms_webhooks.delivery.host_limiter import HostLimiter
from oms_webhooks.delivery.outcome import Lane
from oms_webhooks.delivery.request.sender import SendOptions
from oms_webhooks.delivery.retry import scheduling
from oms_webhooks.observability import service_logger, service_metrics
from oms_webhooks.settings import Settings, get_settings

#: Powertools' Logger and Metrics share their state with the handler's.
logger = service_logger()
metrics = service_metrics()


class HeldBack(Exception):
    """The message stays on the queue (its visibility was set): report it as failed."""


def _dead_letter(record: SQSRecord, reason: str) -> None:
    """Move a malformed message to the DLQ at once (else it would take 1,000 receives)."""
    settings = get_settings()
    metrics.add_metric(name="DeliveryMessageMalformed", unit=MetricUnit.Count, value=1)
    if not settings.delivery_dlq_url:
        raise delivery_message.MalformedMessage(reason)
    client("sqs").send_message(QueueUrl=settings.delivery_dlq_url, MessageBody=record.body)
    logger.error(
        "malformed delivery message moved to the DLQ",
        extra={"message_id": record.message_id, "reason": reason},
    )


def _lane(record: SQSRecord, settings: Settings) -> tuple[Lane, str]:
    """The record's lane and its queue's URL (the slow lane's queue, else the delivery queue)."""
    slow = settings.delivery_slow_queue_url
    if slow and record.event_source_arn.rsplit(":", 1)[-1] == slow.rsplit("/", 1)[-1]:
        return "slow", slow
    return "main", settings.delivery_queue_url


def _handle(
    record: SQSRecord, batch_started: float, budget_ends: float, limiter: HostLimiter
) -> None:
    settings = get_settings()
    try:
        message = delivery_message.decode(record.body)
    except delivery_message.MalformedMessage as exc:
        _dead_letter(record, str(exc))
        return
    uid = message.delivery_uuid
    lane, queue_url = _lane(record, settings)
    if time.time() + _attempt_budget(settings) > budget_ends:
        # Not enough of the invocation left for a whole attempt: come back soon.
        _hold(record, queue_url, uid, delay=1.0, batch_started=batch_started)
        return
    # Without a slow queue there is nowhere to divert to: every lane attempts.
    outcome = pipeline.dispatch(
        uid,
        SendOptions.from_settings(settings),
        limiter,
        detail=message.detail,
        lane=lane if settings.delivery_slow_queue_url else "slow",
        known=message.known,
    )
    extra: dict[str, Any] = {
        "delivery_uuid": uid,
        "outcome": outcome.kind,
        "detail": outcome.detail,
        "lane": lane,
    }
    if outcome.result is not None:
        metrics.add_metric(name=names.METRIC_DELIVERY_ATTEMPTED, unit=MetricUnit.Count, value=1)
        extra.update(
            response_http_status=outcome.result.status_code,
            error=outcome.result.error,
            response_time=outcome.result.response_time_ms,
        )
    if outcome.kind == "failed":
        metrics.add_metric(name=names.METRIC_DELIVERY_FAILED, unit=MetricUnit.Count, value=1)
    if outcome.circuit_opened:
        metrics.add_metric(name="CircuitOpened", unit=MetricUnit.Count, value=1)
    if outcome.kind == "held":
        metrics.add_metric(name="DeliveryHeld", unit=MetricUnit.Count, value=1)
    logger.info("delivery handled", extra=extra)
    operational_events.publish_reported(
        outcome.notices, delivery_uuid=uid, metrics=metrics, log=logger
    )
    if outcome.kind == "divert":
        # The slow lane takes it over; this message is done (deleted with the batch).
        client("sqs").send_message(
            QueueUrl=settings.delivery_slow_queue_url, MessageBody=record.body
        )
        metrics.add_metric(name="DeliveryDiverted", unit=MetricUnit.Count, value=1)
    elif outcome.kind in ("retry", "not_due", "held"):
        _hold(record, queue_url, uid, delay=outcome.delay or 0.0, batch_started=batch_started)


def _handle_logged(
    record: SQSRecord, batch_started: float, budget_ends: float, limiter: HostLimiter
) -> None:
    """:func:`_handle`, logging unexpected errors (the batch processor only counts them)."""
    try:
        _handle(record, batch_started, budget_ends, limiter)
    except HeldBack:
        raise
    except Exception:
        logger.exception("delivery message failed", extra={"message_id": record.message_id})
        metrics.add_metric(name="DeliveryMessageError", unit=MetricUnit.Count, value=1)
        raise


def _attempt_budget(settings: Settings) -> float:
    """Seconds one attempt may take at worst: DNS, connect and read timeouts, and a margin."""
    return (
        settings.dns_timeout_seconds
        + settings.connect_timeout_seconds
        + settings.read_timeout_seconds
        + 5.0
    )


def _hold(
    record: SQSRecord, queue_url: str, uid: str, *, delay: float, batch_started: float
) -> None:
    """Keep the message hidden ``delay`` seconds and report it failed (or re-send it)."""
    sent_at = int(record.attributes.sent_timestamp) / 1000
    hold = scheduling.plan_hold(
        delay,
        now=time.time(),
        received_at=batch_started,
        sent_at=sent_at,
        receive_count=int(record.attributes.approximate_receive_count or 1),
    )
    deleted = scheduling.apply_hold(
        hold,
        sqs=client("sqs"),
        queue_url=queue_url,
        receipt_handle=record.receipt_handle,
        delivery_uuid=uid,
        message_body=record.body,
    )
    if not deleted:
        raise HeldBack(f"next look in {hold.visibility} s")


def process(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Process an SQS batch of delivery messages; returns ``batchItemFailures``.

    A batch processor per call: Powertools processors keep per-batch state,
    and the local stack runs several invocations at once in threads.
    """
    batch_started = time.time()
    budget_ends = batch_started + context.get_remaining_time_in_millis() / 1000
    limiter = HostLimiter(get_settings().max_concurrent_per_host)
    # One thread per record: asyncio's default pool has only cpu + 4 threads
    # (6 on a 2-vCPU function), which would send a batch of 10 in two waves.
    workers = max(1, len(event.get("Records") or []))
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="delivery") as pool:

        async def record_handler(record: SQSRecord) -> None:
            loop = asyncio.get_running_loop()
            await loop.run_in_executor(
                pool, _handle_logged, record, batch_started, budget_ends, limiter
            )

        return async_process_partial_response(  # type: ignore[return-value]
            event=event,
            record_handler=record_handler,
            processor=AsyncBatchProcessor(
                event_type=EventType.SQS, raise_on_entire_batch_failure=False
            ),
            context=context,
        )
