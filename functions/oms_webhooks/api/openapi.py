"""The API's OpenAPI document: Powertools' generated one, patched to say what the API answers.

Validation errors are 400 (not Powertools' default 422) and paths end with a
slash, as the whisperer API's do. The document models (~100 pydantic models,
70-140 ms to import) load only when the document or the docs page is asked
for, never at a cold start (tests/infra/test_cold_start.py).
"""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.event_handler import APIGatewayRestResolver
from aws_lambda_powertools.event_handler.openapi.types import OpenAPIResponse

from oms_webhooks import __version__
from oms_webhooks.api.schemas import ErrorOut
from oms_webhooks.names import AUTHORIZATION_HEADER, SERVICE_NAME

if TYPE_CHECKING:
    from aws_lambda_powertools.event_handler.openapi.models import OpenAPI
    from pydantic import BaseModel


def error_response(status: int, description: str) -> dict[int, OpenAPIResponse]:
    """An operation's documented error answer: ``{status: ErrorOut as JSON}``."""
    return {
        status: {"description": description, "content": {"application/json": {"model": ErrorOut}}}
    }


def responses(
    status: int,
    description: str,
    *errors: dict[int, OpenAPIResponse],
    model: type[BaseModel] | None = None,
) -> dict[int, OpenAPIResponse]:
    """An operation's documented answers: ``status`` (with ``model`` as JSON if given), then
    each set of errors (:data:`BAD_INPUT`, :data:`AUTH_ERRORS`, ...) in the order given."""
    answer: OpenAPIResponse = {"description": description}
    if model is not None:
        answer["content"] = {"application/json": {"model": model}}
    merged: dict[int, OpenAPIResponse] = {status: answer}
    for error in errors:
        merged.update(error)
    return merged


AUTH_ERRORS = error_response(401, "Missing, unknown or revoked token")
BAD_INPUT = error_response(400, "Invalid input: the fields and the reasons")
NOT_FOUND = error_response(404, "No such subscription for this tenant")
DELIVERY_NOT_FOUND = error_response(404, "No such delivery for this tenant")
TOO_MANY_SENDS = error_response(
    429, "Too many pings or resends of this tenant in flight (see Retry-After)"
)
BODY_ERRORS = {
    **error_response(413, "Request body too large"),
    **error_response(415, "Request body is not JSON"),
}
CONFLICT = error_response(409, "Duplicate subscription or concurrent change")
FORBIDDEN = error_response(403, "The token may not subscribe to this event type")


class WhispererResolver(APIGatewayRestResolver):
    """REST resolver whose OpenAPI document lists the 400 we answer, not 422."""

    def get_openapi_schema(self, *args: Any, **kwargs: Any) -> OpenAPI:
        """The OpenAPI document, with Powertools' 422 responses replaced by our 400."""
        from aws_lambda_powertools.event_handler.openapi.models import OpenAPI

        schema = super().get_openapi_schema(*args, **kwargs)
        doc = schema.model_dump(by_alias=True, exclude_none=True)
        # Powertools' REST resolver matches with or without the trailing slash
        # and documents neither; the whisperer API's paths end with one.
        doc["paths"] = {
            (path if path.endswith((".json", "/docs")) else f"{path}/"): item
            for path, item in doc.get("paths", {}).items()
        }
        for path_item in doc["paths"].values():
            for operation in path_item.values():
                if isinstance(operation, dict) and "responses" in operation:
                    responses = operation["responses"]
                    responses.pop("422", None)
                    responses.pop(422, None)
        components = doc.get("components", {}).get("schemas", {})
        for name in ("HTTPValidationError", "ValidationError", "ResponseValidationError"):
            components.pop(name, None)
        return OpenAPI.model_validate(doc)

    def allowed_methods(self, path: str) -> list[str]:
        """The methods routed at ``path``, sorted (empty: no route has the path).

        Powertools lists no routes publicly; its route tables are read here,
        in its subclass, a static path hiding a pattern as in its own lookup.
        """
        allowed: list[str] = []
        for routes in (self._static_routes, self._dynamic_routes):
            allowed = allowed or sorted({r.method for r in routes if r.rule.match(path)})
        return allowed


@cache
def openapi_settings() -> dict[str, Any]:
    """Title, version, description and security of the OpenAPI document (keyword arguments
    of Powertools' ``get_openapi_json_schema`` and ``enable_swagger``)."""
    from aws_lambda_powertools.event_handler.openapi.models import APIKey

    return {
        "title": SERVICE_NAME,
        "version": __version__,
        "description": "Whisperer-compatible webhook subscriptions for OMS events. "
        "Authenticate with the header `Authorization: Token <token>`.",
        "security_schemes": {
            "Token": APIKey.model_validate(
                {
                    "type": "apiKey",
                    "in": "header",
                    "name": AUTHORIZATION_HEADER,
                    "description": "`Token <token>`",
                }
            )
        },
        "security": [{"Token": []}],
    }
