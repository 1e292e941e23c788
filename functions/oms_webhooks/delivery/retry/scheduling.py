"""Holding a delivery message back on SQS until its next attempt (DESIGN §5).

A failed attempt with retries left keeps its message: the dispatcher sets the
message's visibility timeout to the countdown and reports it as a batch item
failure, so SQS itself hides it for exactly that long. Two AWS limits shape
this:

* ``ChangeMessageVisibility`` accepts 0-43,200 s, and AWS counts the 12-hour
  cap from the time the message was *received*: a countdown longer than what
  is left of that is served in hops (the message comes back early, is seen
  not to be due, and is hidden again). moto does not enforce the cap; this
  module does.
* A message lives at most the queue's retention (≤ 14 days) from its
  original send. A countdown that would outlive it re-sends the message (its
  state lives in DynamoDB; the body is just the delivery uuid) and lets the
  old one be deleted.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from oms_webhooks import limits
from oms_webhooks.limits import SQS_MAX_RETENTION_SECONDS, SQS_MAX_VISIBILITY_SECONDS

#: Seconds kept free below the 12-hour cap (the receive happened before we saw it).
VISIBILITY_MARGIN_SECONDS = 120
#: Re-send a message this long before its retention runs out, in seconds.
RETENTION_MARGIN_SECONDS = 3_600
#: A held message received this often is re-sent fresh (SQS maxReceiveCount is 1,000).
RESEND_AT_RECEIVE_COUNT = 900
#: SQS's largest DelaySeconds (15 minutes).
SQS_MAX_DELAY_SECONDS = limits.SQS_MAX_DELAY_SECONDS


@dataclass(frozen=True)
class Hold:
    """How to hold a message: ``visibility`` seconds, or a re-send with ``delay`` seconds."""

    visibility: int | None = None
    resend_delay: int | None = None


def plan_hold(
    delay: float,
    *,
    now: float,
    received_at: float,
    sent_at: float,
    retention: int = SQS_MAX_RETENTION_SECONDS,
    receive_count: int = 1,
) -> Hold:
    """Decide how to keep a message hidden for ``delay`` seconds.

    Args:
        delay: seconds until the next look at the delivery (≥ 0).
        now: the current Unix time in seconds.
        received_at: Unix seconds of this receive (at the latest: the start
            of the batch); the 12-hour cap counts from it.
        sent_at: Unix seconds of the message's original send (SQS
            ``SentTimestamp``); the retention counts from it.
        retention: the queue's message retention in seconds.
        receive_count: the message's ``ApproximateReceiveCount``; from
            :data:`RESEND_AT_RECEIVE_COUNT` on, the message is re-sent fresh
            (every hold is a receive, and ``maxReceiveCount`` is 1,000:
            DESIGN §9), delayed at most 15 minutes.

    Returns:
        A :class:`Hold` with ``visibility`` (0-43,200 s, within what is left
        of the cap) or, when the message would expire first, ``resend_delay``.
    """
    left_of_cap = SQS_MAX_VISIBILITY_SECONDS - (now - received_at) - VISIBILITY_MARGIN_SECONDS
    visibility = int(max(0.0, min(delay, left_of_cap)))
    expires = sent_at + retention - RETENTION_MARGIN_SECONDS
    if now + visibility >= expires or receive_count >= RESEND_AT_RECEIVE_COUNT:
        return Hold(resend_delay=int(max(0.0, min(delay, SQS_MAX_DELAY_SECONDS))))
    return Hold(visibility=visibility)


def apply_hold(
    hold: Hold,
    *,
    sqs: Any,
    queue_url: str,
    receipt_handle: str,
    delivery_uuid: str,
    message_body: str | None = None,
) -> bool:
    """Carry out ``hold``; True if the current message must be deleted (it was re-sent).

    A re-sent message keeps ``message_body`` (the payload it may carry), else
    it is the bare ``{"delivery": uuid}``.
    """
    if hold.resend_delay is not None:
        sqs.send_message(
            QueueUrl=queue_url,
            MessageBody=message_body or json.dumps({"delivery": delivery_uuid}),
            DelaySeconds=hold.resend_delay,
        )
        return True
    sqs.change_message_visibility(
        QueueUrl=queue_url, ReceiptHandle=receipt_handle, VisibilityTimeout=hold.visibility or 0
    )
    return False
