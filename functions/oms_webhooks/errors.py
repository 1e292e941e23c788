"""Errors the API turns into JSON answers ``{"code", "detail", "errors"}`` (DESIGN §3).

Plain modules raise these; only the api handler knows about HTTP. ``errors``
maps a field name (dotted for nested fields) to a list of messages. Each
subclass declares its HTTP status and code in its class line
(``class NotFound(ServiceError, status=404, code="not_found")``).
"""

from __future__ import annotations

from typing import Any, ClassVar


class ServiceError(Exception):
    """Base class: an expected failure with an HTTP status, a code and a message."""

    status: ClassVar[int] = 400
    code: ClassVar[str] = "invalid"

    def __init_subclass__(
        cls, *, status: int | None = None, code: str | None = None, **kwargs: Any
    ) -> None:
        """Take the subclass's ``status`` and ``code`` from its class line (else inherited)."""
        super().__init_subclass__(**kwargs)
        cls.status = cls.status if status is None else status
        cls.code = cls.code if code is None else code

    def __init__(self, detail: str, errors: dict[str, list[str]] | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.errors = errors or {}

    def as_body(self) -> dict[str, object]:
        """The JSON error body."""
        return {"code": self.code, "detail": self.detail, "errors": self.errors}


class ValidationFailed(ServiceError, status=400, code="invalid"):
    """400: the input broke a field rule."""


class LimitExceeded(ServiceError, status=400, code="limit_exceeded"):
    """400: a per-tenant limit was reached."""


class NotFound(ServiceError, status=404, code="not_found"):
    """404: no such object for this tenant (another tenant's object included)."""


class Conflict(ServiceError, status=409, code="conflict"):
    """409: the change conflicts with existing state (duplicate, concurrent update)."""


class Forbidden(ServiceError, status=403, code="forbidden"):
    """403: the token's scope forbids it."""


class NotAuthenticated(ServiceError, status=401, code="not_authenticated"):
    """401: no tenant in the request (the authorizer did not run or refused)."""


class PayloadTooLarge(ServiceError, status=413, code="request_too_large"):
    """413: the request body is over the limit."""


class UnsupportedMediaType(ServiceError, status=415, code="unsupported_media_type"):
    """415: the request body is not JSON."""


class TooManyRequests(ServiceError, status=429, code="too_many_requests"):
    """429: the tenant has too many requests of this kind in flight; retry after ``retry_after``."""

    def __init__(self, detail: str, retry_after: int) -> None:
        super().__init__(detail)
        self.retry_after = retry_after
