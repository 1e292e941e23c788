"""Response and request shapes of the delivery log, a manual resend, a ping's answer and recover.

As in :mod:`oms_webhooks.api.schemas` (the subscriptions' shapes), input
models forbid unknown fields; times are ISO 8601 (DESIGN §3, §10).
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StrictBool

from oms_webhooks.api.schemas import STRICT

_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


class DeliveryOut(BaseModel):
    """A delivery (``hook_events``) as listed: the last attempt's outcome."""

    uuid: str = Field(description="32 lowercase hex; also the envelope's event.uuid and webhook-id")
    webhook: str = Field(description="The subscription id")
    event_type: str
    event_id: str = Field(description="The EventBridge event id")
    status: Literal["pending", "delivered", "failed", "cancelled"]
    delivered: bool
    retry_count: int
    response_http_status: int | None
    response_content: str | None = Field(description="Excerpt (≤ 4 KiB) of the last response")
    response_time: int | None = Field(description="Milliseconds of the last attempt")
    error: str | None = Field(
        None, description="The last attempt's error (timeout, refused, ...), if it had no answer"
    )
    reason: str | None = Field(
        None,
        description="Why a pending delivery is held (no attempt is made): its target's circuit "
        "breaker, e.g. 'circuit open since <ISO time>; next probe at <ISO time>'; null otherwise",
    )
    created_date: datetime
    modified_date: datetime


class AttemptOut(BaseModel):
    """One attempt: when, what came back (or the error), how long it took."""

    at: datetime
    response_http_status: int | None
    error: str | None
    response_time: int = Field(description="Milliseconds")
    response_content: str | None


class DeliveryDetailOut(DeliveryOut):
    """One delivery with the request it sends and its latest 100 attempts (oldest first)."""

    request_payload: dict[str, Any]
    attempts: list[AttemptOut]


class DeliveryPage(BaseModel):
    """One page of deliveries (newest first); ``next`` is the next page's path or null."""

    results: list[DeliveryOut]
    next: str | None


class ResendIn(BaseModel):
    """Body of ``POST /whisperer/hook_events/{uuid}/retry/`` (optional)."""

    model_config = STRICT

    force: StrictBool = Field(False, description="Resend even if already delivered")


class AttemptAnswerOut(BaseModel):
    """What the target answered to a manual resend or a ping (200 whatever it answered)."""

    detail: str
    response_status: int | None
    response_content: str | None
    delivered: bool
    response_time: int = Field(description="Milliseconds")


def iso_8601_text(value: Any) -> Any:
    """``value`` if it is an ISO 8601 string, not what pydantic would read as Unix seconds.

    Recover's times and the delivery log's date filters; a naive date-time means UTC.

    Raises:
        ValueError: for a number, or a string that does not start with a date.
    """
    if not isinstance(value, str) or not _ISO_DATE.match(value):
        raise ValueError("must be an ISO 8601 date-time, e.g. 2024-05-01T12:00:00Z")
    return value


class RecoverIn(BaseModel):
    """Body of ``POST /whisperer/hooks/{id}/recover/`` (DESIGN §10)."""

    model_config = ConfigDict(extra="forbid")

    since: Annotated[datetime, BeforeValidator(iso_8601_text)] = Field(
        description="Start of the window (ISO 8601; within the delivery retention)"
    )
    until: Annotated[
        datetime | None, BeforeValidator(lambda v: v if v is None else iso_8601_text(v))
    ] = Field(
        None,
        description="End of the window (ISO 8601); default now, plus the router cache "
        "window so that events fanned out from a stale cache are covered too",
    )


class RecoverAcceptedOut(BaseModel):
    """The 202 answer of a recover: the recovery's id and what it has queued so far."""

    detail: str
    recovery: str
    queued: int


class RecoveryOut(BaseModel):
    """A recovery's progress (``GET /whisperer/hooks/{id}/recover/{recovery}/``)."""

    recovery: str
    subscription: str
    status: Literal["running", "done", "stopped"] = Field(
        description="stopped: the subscription was deactivated or deleted meanwhile"
    )
    since: datetime
    until: datetime | None
    window_end: datetime = Field(description="The end of the window actually covered")
    queued: int = Field(description="Deliveries created or re-opened and enqueued so far")
    skipped: int = Field(description="Events already pending or delivered to it, skipped")
    created_date: datetime
    finished_date: datetime | None
