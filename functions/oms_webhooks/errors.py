"""Errors the API turns into JSON answers ``{"code", "detail", "errors"}`` (DESIGN §3).

Plain modules raise these; only the api handler knows about HTTP. ``errors``
maps a field name (dotted for nested fields) to a list of messages.
"""

from __future__ import annotations


class ServiceError(Exception):
    """Base class: an expected failure with an HTTP status, a code and a message."""

    status = 400
    code = "invalid"

    def __init__(self, detail: str, errors: dict[str, list[str]] | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.errors = errors or {}

    def as_body(self) -> dict[str, object]:
        """The JSON error body."""
        return {"code": self.code, "detail": self.detail, "errors": self.errors}


class ValidationFailed(ServiceError):
    """400: the input broke a field rule."""

    status = 400
    code = "invalid"


class LimitExceeded(ServiceError):
    """400: a per-tenant limit was reached."""

    status = 400
    code = "limit_exceeded"


class NotFound(ServiceError):
    """404: no such object for this tenant (another tenant's object included)."""

    status = 404
    code = "not_found"


class Conflict(ServiceError):
    """409: the change conflicts with existing state (duplicate, concurrent update)."""

    status = 409
    code = "conflict"


class Forbidden(ServiceError):
    """403: the token's scope forbids it."""

    status = 403
    code = "forbidden"


class NotAuthenticated(ServiceError):
    """401: no tenant in the request (the authorizer did not run or refused)."""

    status = 401
    code = "not_authenticated"


class TooManyRequests(ServiceError):
    """429: the tenant has too many requests of this kind in flight; retry after ``retry_after``."""

    status = 429
    code = "too_many_requests"

    def __init__(self, detail: str, retry_after: int) -> None:
        super().__init__(detail)
        self.retry_after = retry_after


class PayloadTooLarge(ServiceError):
    """413: the request body is over the limit."""

    status = 413
    code = "request_too_large"


class UnsupportedMediaType(ServiceError):
    """415: the request body is not JSON."""

    status = 415
    code = "unsupported_media_type"
