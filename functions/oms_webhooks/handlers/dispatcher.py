"""Dispatcher Lambda: SQS delivery queue → one signed POST per due delivery.

Entry point only: the batch is processed by :mod:`oms_webhooks.delivery.batch`
(records concurrently, partial failures, holds; DESIGN §5).
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from oms_webhooks.delivery import batch
from oms_webhooks.observability import service_logger, service_metrics

logger = service_logger()
metrics = service_metrics()


@metrics.log_metrics
@logger.inject_lambda_context(clear_state=True)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Process an SQS batch of delivery messages; returns ``batchItemFailures``."""
    return batch.process(event, context)
