"""The raw-body gate: checks on a request body before Powertools parses anything.

A body over ``OMS_WEBHOOKS_MAX_BODY_BYTES`` is a 413; a body that is not
``application/json`` or not UTF-8 a 415; one that JSON's own limits refuse a
400 ``invalid_json`` (the answer says where it broke). Content types are
lower-cased for Powertools, which compares them as they are.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from aws_lambda_powertools.event_handler import content_types

from oms_webhooks.api.errors import InvalidJson, malformed_json_detail
from oms_webhooks.errors import PayloadTooLarge, ServiceError, UnsupportedMediaType
from oms_webhooks.settings import get_settings

_BODY_METHODS = {"POST", "PUT", "PATCH"}


def _body_bytes(event: dict[str, Any]) -> bytes:
    body = event.get("body") or ""
    if event.get("isBase64Encoded"):
        try:
            return base64.b64decode(body)
        except (binascii.Error, ValueError):
            return body.encode("utf-8", "replace")
    return str(body).encode("utf-8", "surrogatepass")


def check_body(event: dict[str, Any]) -> ServiceError | None:
    """The refusal of the API Gateway proxy ``event``'s body, or None if it may go on.

    Only POST, PUT and PATCH bodies are checked; an empty body passes (the
    route's validation says whether it needs one).
    """
    if str(event.get("httpMethod", "")).upper() not in _BODY_METHODS:
        return None
    body = _body_bytes(event)
    limit = get_settings().max_body_bytes
    if len(body) > limit:
        return PayloadTooLarge(f"request body is {len(body)} bytes; the limit is {limit} bytes")
    headers = {k.lower(): v for k, v in (event.get("headers") or {}).items()}
    content_type = (headers.get("content-type") or "").split(";", 1)[0].strip().lower()
    if not body.strip():
        return None
    if content_type and content_type != "application/json":
        return UnsupportedMediaType(
            f"Content-Type {content_type!r} is not supported; send application/json",
            {"body": ["send Content-Type: application/json"]},
        )
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return UnsupportedMediaType(
            "request body is not UTF-8 (compressed bodies are not accepted)",
            {"body": ["send UTF-8 JSON, uncompressed"]},
        )
    return _check_json(text)


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _check_json(text: str) -> ServiceError | None:
    """Parse the body once with JSON's own limits before Powertools does.

    Refused with a 400 ``invalid_json``: syntax errors (with line and
    column), ``NaN``/``Infinity`` (not JSON, RFC 8259 §6), integers over
    Python's 4,300-digit conversion limit and nesting deep enough to exhaust
    the parser's recursion (both would otherwise surface as a 5xx).
    """
    try:
        json.loads(text, parse_constant=_reject_constant)
    except json.JSONDecodeError as err:
        detail = malformed_json_detail(err)
    except RecursionError:
        detail = "Malformed JSON: nested too deeply"
    except ValueError as err:
        detail = f"Malformed JSON: {err}"
    else:
        return None
    return InvalidJson(detail, {"body": [detail]})


def refusal(refused: ServiceError) -> dict[str, Any]:
    """The API Gateway proxy response of a request the gate refused."""
    return {
        "statusCode": refused.status,
        "headers": {"Content-Type": content_types.APPLICATION_JSON},
        "multiValueHeaders": {},
        "body": json.dumps(refused.as_body(), ensure_ascii=False, separators=(",", ":")),
        "isBase64Encoded": False,
    }


def lowercase_content_type(event: dict[str, Any]) -> None:
    """Media types are case-insensitive (RFC 9110 §8.3.1); Powertools compares them as is."""
    for key in ("headers", "multiValueHeaders"):
        headers = event.get(key) or {}
        for name in list(headers):
            if name.lower() == "content-type":
                value = headers[name]
                headers[name] = (
                    [v.lower() for v in value] if isinstance(value, list) else value.lower()
                )
