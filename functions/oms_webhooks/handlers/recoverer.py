"""Recoverer Lambda: SQS recovery queue → one recovery worked on per record (DESIGN §10).

Entry point only: the batch is processed by :mod:`oms_webhooks.routing.recovery_worker`
(a recovery runs until done or the invocation nears its end, then is queued again).
"""

from __future__ import annotations

import os
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.utilities.typing import LambdaContext

from oms_webhooks import names
from oms_webhooks.routing import recovery_worker

logger = Logger(service="oms-webhooks")
metrics = Metrics(namespace=os.environ.get("POWERTOOLS_METRICS_NAMESPACE", names.METRICS_NAMESPACE))


@metrics.log_metrics
@logger.inject_lambda_context(clear_state=True)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Process a batch of recovery messages; returns ``batchItemFailures``."""
    return recovery_worker.process(event, context)
