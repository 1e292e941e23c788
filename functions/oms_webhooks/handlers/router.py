"""Router Lambda: SQS ingress queue (EventBridge events) → fan-out.

Entry point only: the batch is processed by :mod:`oms_webhooks.routing.ingress`
(partial failures; unroutable events acknowledged, DESIGN §8).
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from oms_webhooks.observability import service_logger, service_metrics
from oms_webhooks.routing import ingress

logger = service_logger()
metrics = service_metrics()


@metrics.log_metrics
@logger.inject_lambda_context(clear_state=True)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Process an SQS batch of EventBridge events; returns ``batchItemFailures``."""
    return ingress.process(event, context)
