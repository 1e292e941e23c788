"""Router Lambda: SQS ingress queue (EventBridge events) → fan-out.

Entry point only: the batch is processed by :mod:`oms_webhooks.routing.ingress`
(partial failures; unroutable events acknowledged, DESIGN §8).
"""

from __future__ import annotations

import os
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.utilities.typing import LambdaContext

from oms_webhooks import names
from oms_webhooks.routing import ingress

logger = Logger(service="oms-webhooks")
metrics = Metrics(namespace=os.environ.get("POWERTOOLS_METRICS_NAMESPACE", names.METRICS_NAMESPACE))


@metrics.log_metrics
@logger.inject_lambda_context(clear_state=True)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Process an SQS batch of EventBridge events; returns ``batchItemFailures``."""
    return ingress.process(event, context)
