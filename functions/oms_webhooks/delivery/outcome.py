"""The typed results of the delivery pipeline (:mod:`oms_webhooks.delivery.pipeline`).

:class:`Prepared` is what an attempt needs, loaded and checked; :class:`Outcome`
is what handling one delivery message decided (after svix's worker: each step
returns a typed result rather than mutating shared state).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from oms_webhooks.delivery import operational_events
from oms_webhooks.delivery.request.sender import AttemptResult
from oms_webhooks.storage.models import DeliveryModel, EventPayloadModel, SubscriptionModel
from oms_webhooks.subscriptions import health

OutcomeKind = Literal[
    "delivered", "retry", "failed", "cancelled", "skipped", "not_due", "held", "divert"
]
#: The dispatcher's lanes (DESIGN §9): slow targets' deliveries move to the slow one.
Lane = Literal["main", "slow"]


@dataclass(frozen=True)
class Outcome:
    """What handling one delivery message decided.

    ``delay`` (seconds) is set for ``retry`` and ``not_due``: how long the
    message must stay hidden before the next look. ``disabled`` is set when
    this attempt turned the subscription inactive (410, or failing too long).
    ``notices`` are the operational events to put on the bus (DESIGN §10).
    """

    kind: OutcomeKind
    delivery_uuid: str
    delay: float | None = None
    detail: str = ""
    result: AttemptResult | None = None
    disabled: health.Disabled | None = None
    #: The attempt opened its target's circuit breaker (a metric counts opens).
    circuit_opened: bool = False
    notices: tuple[operational_events.OperationalEvent, ...] = ()


@dataclass(frozen=True)
class Prepared:
    """Everything an attempt needs, loaded and checked."""

    delivery: DeliveryModel
    subscription: SubscriptionModel
    payload: EventPayloadModel
