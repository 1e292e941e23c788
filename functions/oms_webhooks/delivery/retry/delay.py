"""The next countdown of a failed attempt: the policy's, raised to a ``Retry-After``."""

from __future__ import annotations

from oms_webhooks.delivery.request.sender import AttemptResult
from oms_webhooks.delivery.retry.policies import countdown_for
from oms_webhooks.delivery.retry.retry_after import parse_retry_after
from oms_webhooks.limits import SQS_MAX_VISIBILITY_SECONDS
from oms_webhooks.storage.models import SubscriptionModel

#: Retry-After values are never honoured beyond this, in seconds (one SQS hop).
MAX_RETRY_AFTER_SECONDS = SQS_MAX_VISIBILITY_SECONDS


def next_delay(
    subscription: SubscriptionModel, retry_number: int, result: AttemptResult, *, now: float
) -> float:
    """Seconds until retry ``retry_number`` (0 = first retry).

    The policy's countdown, raised to a 429/503's ``Retry-After`` but never
    beyond the policy's own ``limit`` (or 12 hours without one).
    """
    config = subscription.retry_countdown_config
    delay = float(countdown_for(config, retry_number))
    asked = parse_retry_after(result.retry_after, now=now)
    if asked is not None and asked > delay:
        limit = (config.get("kwargs") or {}).get("limit")
        cap = float(limit) if isinstance(limit, int) else float(MAX_RETRY_AFTER_SECONDS)
        delay = max(delay, min(asked, cap))
    return delay
