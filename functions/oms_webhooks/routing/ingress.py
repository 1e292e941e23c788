"""The router's SQS batch: EventBridge events from the ingress queue → fan-out.

Powertools batch processing with partial failures: a record that raises is
reported in ``batchItemFailures`` and comes back after the ingress queue's
visibility timeout (poison ends in the ingress DLQ); an all-failed batch is
not a function error (``raise_on_entire_batch_failure=False``, DESIGN §8).
Each event goes to :func:`oms_webhooks.routing.fanout.fan_out`.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import (
    BatchProcessor,
    EventType,
    process_partial_response,
)
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from oms_webhooks.aws_clients import client
from oms_webhooks.observability import service_logger, service_metrics
from oms_webhooks.routing import fanout
from oms_webhooks.settings import get_settings

#: Powertools' Logger and Metrics share their state with the handler's.
logger = service_logger()
metrics = service_metrics()


def record_handler(record: SQSRecord) -> None:
    """Fan one EventBridge event out; unroutable events are acknowledged."""
    try:
        event = fanout.parse_event(record.body)
    except fanout.Unroutable as exc:
        logger.warning(
            "event not routed", extra={"reason": str(exc), "message_id": record.message_id}
        )
        metrics.add_metric(name="EventUnroutable", unit=MetricUnit.Count, value=1)
        return
    except fanout.OversizeEvent as exc:
        logger.error(
            "oversize event left for the ingress DLQ",
            extra={"reason": str(exc), "message_id": record.message_id},
        )
        metrics.add_metric(name="EventOversize", unit=MetricUnit.Count, value=1)
        raise
    except Exception:  # a bug: never fail an event without saying why
        logger.exception(
            "event could not be read; it will be retried, then dead-lettered",
            extra={"message_id": record.message_id},
        )
        metrics.add_metric(name="EventError", unit=MetricUnit.Count, value=1)
        raise
    try:
        result = fanout.fan_out(
            event, sqs=client("sqs"), queue_url=get_settings().delivery_queue_url
        )
    except Exception:
        logger.exception(
            "fan-out failed; the event will be retried", extra={"event_id": event.event_id}
        )
        raise
    for failure in result.filter_failures:
        logger.warning(
            "payload filter failed: no delivery for this subscription",
            extra={
                "event_id": result.event_id,
                "subscription_id": failure.subscription_id,
                "tenant": failure.tenant,
                "filter_error": failure.error,
            },
        )
    logger.info(
        "event fanned out",
        extra={
            "event_id": result.event_id,
            "event_type": event.event_type,
            "subscriptions_matched": result.matched,
            "subscriptions_filtered_out": result.filtered_out,
            "deliveries_created": result.created,
            "messages_sent": result.sent,
        },
    )
    metrics.add_metric(name="DeliveriesCreated", unit=MetricUnit.Count, value=result.created)
    if result.filtered_out:
        metrics.add_metric(name="FilteredOut", unit=MetricUnit.Count, value=result.filtered_out)
    if result.filter_failures:
        metrics.add_metric(
            name="FilterErrors", unit=MetricUnit.Count, value=len(result.filter_failures)
        )


def process(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Process an SQS batch of EventBridge events; returns ``batchItemFailures``.

    A batch processor per call: Powertools processors keep per-batch state,
    and the local stack runs several invocations at once in threads.
    """
    return process_partial_response(  # type: ignore[return-value]
        event=event,
        record_handler=record_handler,
        processor=BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False),
        context=context,
    )
