"""The API's error answers, as a Powertools router of exception handlers the app includes.

Every error is JSON ``{"code", "detail", "errors": {field: [messages]}}``
(DESIGN §3): a :class:`~oms_webhooks.errors.ServiceError` with its status
(429 with ``Retry-After``), a validation error as 400 naming each field (not
Powertools' 422), malformed JSON as a 400 ``invalid_json`` that says where it
broke, a body that is not JSON as 415, an unknown path as 404 and a known path
with another method as 405 with ``Allow``.
"""

from __future__ import annotations

import json
from typing import Any

from aws_lambda_powertools.event_handler import Response, content_types
from aws_lambda_powertools.event_handler.exceptions import NotFoundError
from aws_lambda_powertools.event_handler.openapi.exceptions import (
    RequestUnsupportedContentType,
    RequestValidationError,
)
from aws_lambda_powertools.event_handler.router import APIGatewayRouter

from oms_webhooks.api.openapi import WhispererResolver
from oms_webhooks.errors import NotFound, ServiceError, TooManyRequests, UnsupportedMediaType

router = APIGatewayRouter()


class InvalidJson(ServiceError, status=400, code="invalid_json"):
    """400: the body is not JSON (the answer says where it broke)."""


def malformed_json_detail(err: json.JSONDecodeError) -> str:
    """What an ``invalid_json`` answer says of a syntax error: where it broke and why."""
    return f"Malformed JSON at line {err.lineno} column {err.colno} (char {err.pos}): {err.msg}"


def json_response(status: int, body: Any) -> Response[Any]:
    """``body`` as a compact UTF-8 JSON answer with ``status``."""
    return Response(
        status_code=status,
        content_type=content_types.APPLICATION_JSON,
        body=json.dumps(body, ensure_ascii=False, separators=(",", ":")),
    )


@router.exception_handler(ServiceError)
def _service_error(exc: ServiceError) -> Response[Any]:
    return json_response(exc.status, exc.as_body())


@router.exception_handler(TooManyRequests)
def _too_many_requests(exc: TooManyRequests) -> Response[Any]:
    response = json_response(exc.status, exc.as_body())
    response.headers["Retry-After"] = str(exc.retry_after)
    return response


def _field_name(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc[1:]] if loc and loc[0] in ("body", "query", "path") else []
    return ".".join(parts) or "body"


def _clean_message(msg: str) -> str:
    for prefix in ("Value error, ", "Assertion failed, "):
        if msg.startswith(prefix):
            return msg[len(prefix) :]
    return msg


@router.exception_handler(RequestValidationError)
def _validation_error(exc: RequestValidationError) -> Response[Any]:
    errors: dict[str, list[str]] = {}
    for error in exc.errors():
        if error.get("type") == "json_invalid":
            return _invalid_json()
        loc = tuple(error.get("loc", ()))
        message = _clean_message(str(error.get("msg", "invalid")))
        if error.get("type") == "missing" and loc == ("body",):
            message = "a JSON object body is required"
        elif error.get("type") == "extra_forbidden":
            message = "unknown field"
        errors.setdefault(_field_name(loc), []).append(message)
    first_field, first_messages = next(iter(errors.items()), ("body", ["invalid"]))
    detail = f"Invalid input: {first_field}: {first_messages[0]}"
    return json_response(400, {"code": "invalid", "detail": detail, "errors": errors})


@router.exception_handler(RequestUnsupportedContentType)
def _unsupported_content_type(exc: RequestUnsupportedContentType) -> Response[Any]:
    refused = UnsupportedMediaType(
        "request body is not JSON; send Content-Type: application/json",
        {"body": ["send Content-Type: application/json"]},
    )
    return json_response(refused.status, refused.as_body())


def _invalid_json() -> Response[Any]:
    body = router.current_event.decoded_body or ""
    try:
        json.loads(body)
    except json.JSONDecodeError as err:
        detail = malformed_json_detail(err)
    else:  # pragma: no cover - Powertools only reports json_invalid for undecodable bodies
        detail = "Malformed JSON"
    refused = InvalidJson(detail, {"body": [detail]})
    return json_response(refused.status, refused.as_body())


@router.exception_handler(NotFoundError)
def _not_found(_: Exception) -> Response[Any]:
    """404; 405 with ``Allow`` when the path exists for other methods (RFC 9110 §15.5.6)."""
    resolver = router.api_resolver
    path = router.current_event.path
    allowed = resolver.allowed_methods(path) if isinstance(resolver, WhispererResolver) else []
    if not allowed:
        return json_response(404, NotFound("Not found.").as_body())
    method = router.current_event.http_method.upper()
    detail = f"method {method} is not allowed here; allowed: {', '.join(allowed)}"
    return Response(
        status_code=405,
        content_type=content_types.APPLICATION_JSON,
        body=json.dumps({"code": "method_not_allowed", "detail": detail, "errors": {}}),
        headers={"Allow": ", ".join(allowed)},
    )
