"""The local gateway's own answers: API Gateway's Gateway Responses and default error bodies.

The UNAUTHORIZED (401), ACCESS_DENIED (403) and REQUEST_TOO_LARGE (413)
bodies are the deployed API's Gateway Responses (``infra/oms_webhooks_infra/api.py``,
checked by ``tests/infra/test_api.py``) in the API's error shape
``{"code", "detail", "errors"}`` (DESIGN §3); the others (403 Missing
Authentication Token, 500, 502, 504) are API Gateway's defaults, as deployed.
"""

from __future__ import annotations

import json
from typing import Any

from werkzeug.wrappers import Response

from oms_webhooks import limits, names

#: API Gateway's payload limit (10 MB).
MAX_PAYLOAD_BYTES = limits.API_GATEWAY_MAX_PAYLOAD_BYTES


#: The UNAUTHORIZED (401), ACCESS_DENIED (403) and REQUEST_TOO_LARGE (413)
#: Gateway Responses: the same bodies as the deployed API's
#: (``infra/oms_webhooks_infra/api.py``), in the API's error shape (DESIGN §3).
UNAUTHORIZED_BODY: dict[str, Any] = names.UNAUTHORIZED_BODY
ACCESS_DENIED_BODY: dict[str, Any] = names.ACCESS_DENIED_BODY
TOO_LARGE_BODY: dict[str, Any] = {
    "code": "request_too_large",
    "detail": f"The request is larger than API Gateway's {MAX_PAYLOAD_BYTES} byte limit.",
    "errors": {},
}
#: A request whose body cannot be read (broken chunked encoding, cut short).
BAD_REQUEST_BODY: dict[str, Any] = {
    "code": "bad_request",
    "detail": "The request body could not be read.",
    "errors": {},
}
INTERNAL_ERROR_BODY = {"message": "Internal server error"}
AUTHORIZER_FAILURE_BODY: dict[str, Any] = {"message": None}
TIMEOUT_BODY = {"message": "Endpoint request timed out"}
MISSING_TOKEN_BODY = {"message": "Missing Authentication Token"}


def json_response(status: int, body: Any, request_id: str) -> Response:
    """A JSON answer as API Gateway sends it (``x-amzn-RequestId``, ``x-amzn-ErrorType``)."""
    response = Response(
        json.dumps(body), status=status, content_type="application/json", headers=None
    )
    response.headers["x-amzn-RequestId"] = request_id
    if status in (401, 403):
        response.headers["x-amzn-ErrorType"] = (
            "UnauthorizedException" if status == 401 else "AccessDeniedException"
        )
    return response


__all__ = [
    "ACCESS_DENIED_BODY",
    "AUTHORIZER_FAILURE_BODY",
    "BAD_REQUEST_BODY",
    "INTERNAL_ERROR_BODY",
    "MAX_PAYLOAD_BYTES",
    "MISSING_TOKEN_BODY",
    "TIMEOUT_BODY",
    "TOO_LARGE_BODY",
    "UNAUTHORIZED_BODY",
    "json_response",
]
