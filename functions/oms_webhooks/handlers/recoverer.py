"""Recoverer Lambda: SQS recovery queue → one recovery worked on per record (DESIGN §10).

Entry point only: the batch is processed by :mod:`oms_webhooks.routing.recovery_worker`
(a recovery runs until done or the invocation nears its end, then is queued again).
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from oms_webhooks.observability import service_logger, service_metrics
from oms_webhooks.routing import recovery_worker

logger = service_logger()
metrics = service_metrics()


@metrics.log_metrics
@logger.inject_lambda_context(clear_state=True)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Process a batch of recovery messages; returns ``batchItemFailures``."""
    return recovery_worker.process(event, context)
