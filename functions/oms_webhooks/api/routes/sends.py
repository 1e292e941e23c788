"""What a ping and a manual resend share: their send options and their answer."""

from __future__ import annotations

from oms_webhooks.api.delivery_schemas import AttemptAnswerOut
from oms_webhooks.delivery.request.sender import AttemptResult, SendOptions
from oms_webhooks.settings import get_settings


def send_options() -> SendOptions:
    """The timeouts and limits of an operator's send, from the settings."""
    return SendOptions.from_settings(get_settings())


def attempt_answer(result: AttemptResult) -> AttemptAnswerOut:
    """The answer of a ping or a manual resend: what the target said, whatever it was."""
    if result.delivered:
        detail = "delivered"
    elif result.error:
        detail = f"not delivered: {result.error}"
    else:
        detail = f"not delivered: the target answered {result.status_code}"
    return AttemptAnswerOut(
        detail=detail,
        response_status=result.status_code,
        response_content=result.response_excerpt or None,
        delivered=result.delivered,
        response_time=result.response_time_ms,
    )
