"""Messaging resources (bus, rule, queues): one definition for local stack and CDK.

Names, limits and the rule's event pattern live here so that the local stack
(:mod:`oms_webhooks_local.messaging`) and the CDK app (``infra/``) create the
same things. Tables are defined in :mod:`oms_webhooks.storage.models`.

The default bus and event sources are in :mod:`oms_webhooks.names`, AWS's
limits in :mod:`oms_webhooks.limits`. Sources of the numbers: SQS limits
(visibility 0-43,200 s, retention ≤ 1,209,600 s = 14 days,
``maxReceiveCount`` ≤ 1,000), Lambda's rule of thumb
"queue visibility ≥ 6 × function timeout" (AWS Lambda developer guide, SQS
event source mapping), DESIGN §5 and §8.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from oms_webhooks.limits import SQS_MAX_RETENTION_SECONDS
from oms_webhooks.names import DEFAULT_EVENT_SOURCE, SERVICE_NAME
from oms_webhooks.routing.event_types import EVENT_TYPES

#: Name of the rule that sends catalogue events to the ingress queue.
RULE_NAME = f"{SERVICE_NAME}-ingress"


@dataclass(frozen=True)
class QueueSpec:
    """One SQS queue with its dead-letter queue.

    Attributes:
        name: queue name on the local stack (a deployment prefixes its stack name).
        visibility_timeout: seconds; ≥ 6 × the consuming function's timeout.
        max_receive_count: receives before a message moves to the DLQ (SQS max 1,000).
        function_timeout: seconds, the consuming Lambda's timeout.
        batch_size: records per invocation (event source mapping).
        retention: message retention in seconds (SQS max 14 days).
    """

    name: str
    visibility_timeout: int
    max_receive_count: int
    function_timeout: int
    batch_size: int = 10
    retention: int = SQS_MAX_RETENTION_SECONDS

    @property
    def dlq_name(self) -> str:
        """The dead-letter queue's name (``<name>-dlq``)."""
        return f"{self.name}-dlq"


#: EventBridge → router. Few receives: a message that fails 5 times is poison.
INGRESS_QUEUE = QueueSpec(
    name=f"{SERVICE_NAME}-ingress",
    visibility_timeout=180,
    max_receive_count=5,
    function_timeout=30,
)
#: Router → dispatcher. Retries and countdown hops both count receives, so
#: maxReceiveCount sits at SQS's maximum; only poison reaches the DLQ.
DELIVERY_QUEUE = QueueSpec(
    name=f"{SERVICE_NAME}-delivery",
    visibility_timeout=360,
    max_receive_count=1_000,
    function_timeout=60,
)
#: Dispatcher → dispatcher: the slow lane (DESIGN §9). Deliveries of targets
#: marked slow (an attempt ran past ``slow_attempt_seconds`` or timed out) move
#: here, so their attempts hold the slow lane's invocations, never the main
#: lane's; it has its own event source mapping and maximum concurrency. Its limits
#: are the main lane's (the same dispatcher consumes both).
DELIVERY_SLOW_QUEUE = replace(DELIVERY_QUEUE, name=f"{SERVICE_NAME}-delivery-slow")
#: API (recover) → recoverer: one message per recovery (re-sent to resume).
#: A recovery that fails 5 times is poison.
RECOVERY_QUEUE = QueueSpec(
    name=f"{SERVICE_NAME}-recovery",
    visibility_timeout=720,
    max_receive_count=5,
    function_timeout=120,
    batch_size=1,
)
QUEUES: tuple[QueueSpec, ...] = (
    INGRESS_QUEUE,
    DELIVERY_QUEUE,
    DELIVERY_SLOW_QUEUE,
    RECOVERY_QUEUE,
)


def ingress_event_pattern(source: str = DEFAULT_EVENT_SOURCE) -> dict[str, Any]:
    """The EventBridge rule's event pattern: ``source`` and a catalogue detail-type."""
    return {"source": [source], "detail-type": list(EVENT_TYPES)}


#: Alias of the KMS key that seals partner secrets (secret_key, basic-auth
#: passwords); a deployment prefixes it with its stack name.
SECRETS_KEY_ALIAS = f"alias/{SERVICE_NAME}-secrets"
