"""The body of a delivery (DESIGN §4): the event's identity around its payload.

::

    {"event": {"type": "package.created", "uuid": "<32 hex chars>", "time": "<ISO 8601>"},
     "payload": <the EventBridge event's Detail>}

Encoded once, as UTF-8 JSON with ``ensure_ascii=False`` and compact separators
(``","`` and ``":"``, no spaces); those exact bytes are signed
(:mod:`oms_webhooks.delivery.request.signing`) and sent
(:mod:`oms_webhooks.delivery.request.sender`). The
payload is JSON-equal to the Detail, not byte-equal to what the OMS sent:
EventBridge re-serializes JSON itself.
"""

from __future__ import annotations

import json
from typing import Any

__all__ = ["build_envelope"]


def build_envelope(*, event_type: str, delivery_uuid: str, event_time: str, payload: Any) -> bytes:
    """Encode the delivery body; the result is what is signed and sent, byte for byte.

    ``event_type`` is the event type (``"package.created"``), ``delivery_uuid``
    the delivery's id (32 hex characters), ``event_time`` the event's time as
    an ISO 8601 string (passed through as given), ``payload`` any
    JSON-serializable value. Keys keep their order (``event`` then
    ``payload``; ``type``, ``uuid``, ``time``). Raises ``TypeError`` for a
    payload that is not JSON-serializable and ``ValueError`` for NaN or
    infinite floats (not JSON, RFC 8259 §6). A lone surrogate in a string
    (valid in JSON as an escape, not encodable as UTF-8) is sent as its
    ``\\uXXXX`` escape, so the body stays valid UTF-8 and JSON-equal.

    >>> build_envelope(event_type="t", delivery_uuid="u", event_time="2024", payload={"é": 1})
    b'{"event":{"type":"t","uuid":"u","time":"2024"},"payload":{"\\xc3\\xa9":1}}'
    """
    document = {
        "event": {"type": event_type, "uuid": delivery_uuid, "time": event_time},
        "payload": payload,
    }
    text = json.dumps(document, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    # A lone surrogate (json.loads accepts the escape \ud800) cannot be UTF-8: write
    # it as the JSON escape it came from. For UTF-8 only surrogates fail to encode,
    # and ``backslashreplace`` spells them \udXXX, a valid JSON string escape.
    return text.encode("utf-8", errors="backslashreplace")
