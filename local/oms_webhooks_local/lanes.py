"""The local stack's event source mappings: which queue feeds which handler, how many pollers.

:func:`local_pollers` is the local stack's worker factory: the ingress queue
feeds ``oms_webhooks.handlers.router.handler``, the delivery queue and its
slow lane ``oms_webhooks.handlers.dispatcher.handler``, the recovery queue
``oms_webhooks.handlers.recoverer.handler``, each with
``$OMS_WEBHOOKS_LOCAL_POLLERS`` pollers (default 4; one for recoveries),
their contexts naming the functions :data:`ROUTER_FUNCTION`,
:data:`DISPATCHER_FUNCTION` and :data:`RECOVERER_FUNCTION`
(:class:`~oms_webhooks_local.pollers.QueuePoller`).
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from oms_webhooks.names import SERVICE_NAME, entry_point
from oms_webhooks.resources import (
    DELIVERY_QUEUE,
    DELIVERY_SLOW_QUEUE,
    INGRESS_QUEUE,
    RECOVERY_QUEUE,
    QueueSpec,
)
from oms_webhooks_local.lambda_context import Handler
from oms_webhooks_local.pollers import DEFAULT_CONCURRENCY, QueuePoller, sqs_client

if TYPE_CHECKING:
    from oms_webhooks_local.stack import LocalStack

#: Overrides the pollers per queue (:data:`~oms_webhooks_local.pollers.DEFAULT_CONCURRENCY`).
CONCURRENCY_ENV = "OMS_WEBHOOKS_LOCAL_POLLERS"
#: The handlers the local stack runs, as ``module:attribute`` (imported at start;
#: the same entry points the CDK stack deploys, :data:`oms_webhooks.names.HANDLERS`).
ROUTER_HANDLER = entry_point("Router")
DISPATCHER_HANDLER = entry_point("Dispatcher")
RECOVERER_HANDLER = entry_point("Recoverer")
#: The functions' names in their Lambda contexts (and so in their log lines).
ROUTER_FUNCTION = f"{SERVICE_NAME}-router"
DISPATCHER_FUNCTION = f"{SERVICE_NAME}-dispatcher"
RECOVERER_FUNCTION = f"{SERVICE_NAME}-recoverer"


def concurrency_from_env() -> int:
    """Pollers per queue: ``$OMS_WEBHOOKS_LOCAL_POLLERS`` (≥ 1), else 4."""
    raw = os.environ.get(CONCURRENCY_ENV, "").strip()
    if not raw:
        return DEFAULT_CONCURRENCY
    value = int(raw)
    if value < 1:
        raise ValueError(f"{CONCURRENCY_ENV} must be ≥ 1, not {value}")
    return value


def queue_poller(
    endpoint_url: str,
    spec: QueueSpec,
    handler: Handler | str,
    *,
    function_name: str,
    concurrency: int | None = None,
) -> QueuePoller:
    """A :class:`QueuePoller` for the queue of ``spec`` (batch size, function timeout)."""
    count = concurrency_from_env() if concurrency is None else concurrency
    sqs = sqs_client(endpoint_url, pool_size=count + 2)
    url = sqs.get_queue_url(QueueName=spec.name)["QueueUrl"]
    return QueuePoller(
        url,
        handler,
        sqs=sqs,
        concurrency=count,
        batch_size=spec.batch_size,
        function_name=function_name,
        function_timeout=spec.function_timeout,
    )


def local_pollers(stack: LocalStack) -> list[QueuePoller]:
    """The local stack's worker factory: ingress → router, delivery and slow lane → dispatcher."""
    endpoint = stack.aws_endpoint_url
    return [
        queue_poller(endpoint, INGRESS_QUEUE, ROUTER_HANDLER, function_name=ROUTER_FUNCTION),
        queue_poller(
            endpoint, DELIVERY_QUEUE, DISPATCHER_HANDLER, function_name=DISPATCHER_FUNCTION
        ),
        # The slow lane: the same function under a second event source mapping.
        queue_poller(
            endpoint, DELIVERY_SLOW_QUEUE, DISPATCHER_HANDLER, function_name=DISPATCHER_FUNCTION
        ),
        # One recovery at a time is enough locally (each is paced anyway).
        queue_poller(
            endpoint,
            RECOVERY_QUEUE,
            RECOVERER_HANDLER,
            function_name=RECOVERER_FUNCTION,
            concurrency=1,
        ),
    ]


__all__ = [
    "CONCURRENCY_ENV",
    "DISPATCHER_FUNCTION",
    "DISPATCHER_HANDLER",
    "RECOVERER_FUNCTION",
    "RECOVERER_HANDLER",
    "ROUTER_FUNCTION",
    "ROUTER_HANDLER",
    "concurrency_from_env",
    "local_pollers",
    "queue_poller",
]
