"""The delivery message on the SQS delivery queue (DESIGN §4, §12).

``{"delivery": "<32 hex>"}``, plus ``"known"``, what never changes about the
delivery (:class:`Known`: tenant, subscription, event type, id and time; the
router adds it, so the dispatcher claims without reading the delivery
first), and ``"detail"``, the event's Detail exactly as
stored (a JSON text), when it is at most :data:`INLINE_DETAIL_MAX_BYTES`:
the dispatcher then builds the request without reading the payload item
(one strongly consistent read fewer per attempt; a retry or a hop keeps the
same body). Larger payloads travel by reference and are read per attempt,
so a message stays within one 64 KiB SQS billing chunk. Messages without
``detail`` (older ones, the local stack's resume, a manual resend) are
always understood; so are messages without ``known`` (read the delivery first).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from oms_webhooks import limits

#: Largest Detail carried in the message, in UTF-8 bytes: with the uuid and
#: JSON escaping the body stays within one 64 KiB SQS billing chunk for
#: ordinary payloads (SQS bills each started 64 KiB of a request).
INLINE_DETAIL_MAX_BYTES = 48 * 1024
#: ``SendMessageBatch``'s limits: 10 entries, 256 KiB of bodies in all (the
#: limit moto enforces; SQS itself now takes 1 MiB).
BATCH_MAX_ENTRIES = limits.SQS_BATCH_MAX_ENTRIES
BATCH_MAX_BYTES = limits.SQS_BATCH_MAX_BYTES


class MalformedMessage(ValueError):
    """Not ``{"delivery": "<32 hex>"}`` with an optional ``"detail"`` JSON text and
    ``"known"`` list of five strings (poison)."""


@dataclass(frozen=True)
class Known:
    """What never changes about a delivery, as the router wrote it (message key ``known``).

    With it the dispatcher reads the subscription and claims the delivery
    without reading the delivery item first (the claim's conditional
    update returns it): one read fewer per attempt (README "Design notes").
    """

    tenant: str
    subscription_id: str
    event_type: str
    event_id: str
    event_time: str

    def to_json(self) -> list[str]:
        """The compact form in a message: a list in field order."""
        return [self.tenant, self.subscription_id, self.event_type, self.event_id, self.event_time]


@dataclass(frozen=True)
class DeliveryMessage:
    """A parsed delivery message: the delivery's uuid and, if carried, the event's Detail
    and the delivery's :class:`Known` fields."""

    delivery_uuid: str
    detail: str | None = None
    known: Known | None = None


def encode(delivery_uuid: str, detail_json: str | None = None, known: Known | None = None) -> str:
    """The message body for ``delivery_uuid``, with ``detail_json`` if it fits, and ``known``."""
    body: dict[str, object] = {"delivery": delivery_uuid}
    if known is not None:
        body["known"] = known.to_json()
    if detail_json is not None and len(detail_json.encode("utf-8")) <= INLINE_DETAIL_MAX_BYTES:
        body["detail"] = detail_json
    return json.dumps(body, ensure_ascii=False, separators=(",", ":"))


def decode(body: str) -> DeliveryMessage:
    """Parse a delivery message body.

    Raises:
        MalformedMessage: not JSON, not an object, no 32-hex ``delivery``, or a
            ``detail`` that is not a JSON object's text.
    """
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):
        raise MalformedMessage("delivery message is not JSON") from None
    uid = data.get("delivery") if isinstance(data, dict) else None
    if not isinstance(uid, str) or len(uid) != 32 or not all(c in "0123456789abcdef" for c in uid):
        raise MalformedMessage("delivery message has no valid delivery uuid")
    detail = data.get("detail")
    if detail is not None and (not isinstance(detail, str) or not detail.startswith("{")):
        raise MalformedMessage("delivery message has a detail that is not a JSON object's text")
    known = data.get("known")
    if known is not None:
        if (
            not isinstance(known, list)
            or len(known) != len(Known.__dataclass_fields__)
            or not all(isinstance(k, str) and k for k in known[:4])
            or not isinstance(known[4], str)
        ):
            raise MalformedMessage("delivery message has a malformed known")
        return DeliveryMessage(uid, detail, Known(*known))
    return DeliveryMessage(uid, detail)


def batches(bodies: Sequence[str]) -> Iterator[list[str]]:
    """``bodies`` in ``SendMessageBatch``-sized groups (≤ 10 entries, ≤ 256 KiB in all)."""
    batch: list[str] = []
    size = 0
    for body in bodies:
        length = len(body.encode("utf-8"))
        if batch and (len(batch) == BATCH_MAX_ENTRIES or size + length > BATCH_MAX_BYTES):
            yield batch
            batch, size = [], 0
        batch.append(body)
        size += length
    if batch:
        yield batch
