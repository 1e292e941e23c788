"""The recoverer's SQS batch: one recovery worked on per record (DESIGN §10).

Each message is ``{"recovery": "<32 hex>"}``. The recovery runs until it is
done or the invocation's time nears its end; then it is queued again (a new
message) and resumes after its saved cursor. A malformed message is logged,
counted and acknowledged; an error fails the record (retried; poison ends in
the recovery DLQ). Metrics (count): ``RecoveryWorkedOn`` per record worked on,
``RecoveryResumedLater`` per one queued again to go on, ``RecoveryError`` per
failed record, ``RecoveryMessageMalformed``.
Each recovery is run by :func:`oms_webhooks.routing.recovery.run`.
"""

from __future__ import annotations

import json
import time
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
from oms_webhooks.routing import recovery
from oms_webhooks.settings import get_settings

#: Powertools' Logger and Metrics share their state with the handler's.
logger = service_logger()
metrics = service_metrics()
#: Seconds of the invocation kept free after a recovery pauses (saving, re-queueing).
MARGIN_SECONDS = 10.0


def _recovery_id(body: str) -> str | None:
    try:
        data = json.loads(body)
    except json.JSONDecodeError:
        return None
    value = data.get("recovery") if isinstance(data, dict) else None
    return value if isinstance(value, str) and len(value) == 32 else None


def _record_handler(record: SQSRecord, deadline: float) -> None:
    recovery_id = _recovery_id(record.body)
    if recovery_id is None:
        logger.error("malformed recovery message", extra={"message_id": record.message_id})
        metrics.add_metric(name="RecoveryMessageMalformed", unit=MetricUnit.Count, value=1)
        return
    settings = get_settings()
    sqs = client("sqs")
    # Every record counts once (so a flush is never empty, which Powertools answers
    # with a UserWarning on the operator's console): worked on, or failed.
    try:
        finished = recovery.run(
            recovery_id, sqs=sqs, delivery_queue_url=settings.delivery_queue_url, deadline=deadline
        )
    except Exception:
        metrics.add_metric(name="RecoveryError", unit=MetricUnit.Count, value=1)
        raise
    metrics.add_metric(name="RecoveryWorkedOn", unit=MetricUnit.Count, value=1)
    if not finished:
        sqs.send_message(QueueUrl=settings.recovery_queue_url, MessageBody=record.body)
        metrics.add_metric(name="RecoveryResumedLater", unit=MetricUnit.Count, value=1)
    logger.info("recovery worked on", extra={"recovery": recovery_id, "finished": finished})


def process(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Process a batch of recovery messages; returns ``batchItemFailures``."""
    deadline = time.time() + context.get_remaining_time_in_millis() / 1000 - MARGIN_SECONDS
    return process_partial_response(  # type: ignore[return-value]
        event=event,
        record_handler=lambda record: _record_handler(record, deadline),
        processor=BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False),
        context=context,
    )
