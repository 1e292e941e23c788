"""Request and response shapes of the API's subscriptions, errors and registry (pydantic v2).

The delivery log's, a resend's and recover's are in :mod:`oms_webhooks.api.delivery_schemas`.

Field rules come from DESIGN §3 (itself from the OMS "whisperer"
documentation). Input models are strict (a JSON string is not a number, a
number is not a boolean) and forbid unknown fields, so a typo is an error
that names the field instead of a silently ignored key. Rules that span
fields or need stored state (the whole retry schedule against the delivery
retention, ``Authorization`` vs basic auth) are checked by
:mod:`oms_webhooks.subscriptions.service`.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    StrictBool,
    StrictInt,
    StrictStr,
    field_validator,
)

from oms_webhooks.delivery.request.redaction import REDACTED, is_sensitive_header
from oms_webhooks.delivery.request.url_guard import validate_target_url
from oms_webhooks.delivery.retry.schedule import config_json_schema
from oms_webhooks.routing.event_types import normalize_event_type
from oms_webhooks.routing.filters import MAX_FILTER_CHARS, MAX_FILTER_NODES
from oms_webhooks.routing.filters import validate as validate_filter
from oms_webhooks.settings import get_settings

#: Most ``additional_headers`` a subscription may carry.
MAX_ADDITIONAL_HEADERS = 20
#: Most bytes all additional headers may take together (``name: value\r\n`` each).
MAX_ADDITIONAL_HEADERS_BYTES = 6 * 1024
#: Longest header name accepted, in characters.
MAX_HEADER_NAME_CHARS = 256
#: Longest header value accepted, in characters.
MAX_HEADER_VALUE_CHARS = 4096
#: Longest ``secret_key`` / password accepted, in characters.
MAX_SECRET_CHARS = 1024
#: RFC 9110 §5.6.2 token: the characters a header name may use (``fullmatch``: a ``$``
#: anchor would also accept ``"X-Partner\n"``, which then fails every send; issue 13).
_HEADER_NAME = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
#: Examples of ``filter`` (README "Payload filters"), field names of the OMS events.
FILTER_EXAMPLES = [
    "stock_location.id == `12`",
    "contains(['sample-cargo', 'other-cargo'], carrier)",
    "status == 'in_transit'",
    "sum(items[].quantity) >= `10`",
    "shipment.awb_number != `null`",
]
_FILTER_DESCRIPTION = (
    "JMESPath expression (https://jmespath.org) over the event's payload: only events for "
    'which it is truthy are delivered (null, false, "", [] and {} are false; 0 is true). '
    f"At most {MAX_FILTER_CHARS} characters and {MAX_FILTER_NODES} nodes; null: every event."
)
#: Headers the service sets itself or that frame the request (DESIGN §3).
RESERVED_HEADERS = frozenset(
    {"content-type", "user-agent", "host", "content-length", "transfer-encoding", "connection"}
)
RESERVED_HEADER_PREFIXES = ("x-whisperer-", "webhook-")

#: Input models: unknown fields are errors, and no type is coerced (a string is not a number).
STRICT = ConfigDict(extra="forbid", strict=True)


def redact_headers(headers: dict[str, str] | None) -> dict[str, str] | None:
    """``headers`` with the values of credential-like headers replaced by :data:`REDACTED`."""
    if headers is None:
        return None
    return {k: (REDACTED if is_sensitive_header(k) else v) for k, v in headers.items()}


def check_additional_headers(value: dict[str, str] | None) -> dict[str, str] | None:
    """Validate ``additional_headers`` (null = none).

    Raises:
        ValueError: more than :data:`MAX_ADDITIONAL_HEADERS`, an invalid
            name, CR/LF/NUL in a value, an over-long value, a reserved header,
            or a name given twice in different case.
    """
    if value is None:
        return None
    if len(value) > MAX_ADDITIONAL_HEADERS:
        raise ValueError(f"at most {MAX_ADDITIONAL_HEADERS} headers are allowed")
    total = sum(len(k) + len(v) + 4 for k, v in value.items())
    if total > MAX_ADDITIONAL_HEADERS_BYTES:
        raise ValueError(
            f"the headers take {total} bytes; at most {MAX_ADDITIONAL_HEADERS_BYTES} "
            "(many servers refuse requests whose headers pass 8 KiB)"
        )
    seen: set[str] = set()
    for name, header_value in value.items():
        lower = name.lower()
        if not _HEADER_NAME.fullmatch(name) or len(name) > MAX_HEADER_NAME_CHARS:
            raise ValueError(
                f"{name[:64]!r} is not a valid header name (RFC 9110 token, "
                f"at most {MAX_HEADER_NAME_CHARS} characters)"
            )
        if lower in RESERVED_HEADERS or lower.startswith(RESERVED_HEADER_PREFIXES):
            raise ValueError(f"{name!r} is set by the service and cannot be overridden")
        if lower in seen:
            raise ValueError(f"{name!r} is given twice")
        seen.add(lower)
        if any(c in header_value for c in "\r\n\0"):
            raise ValueError(f"the value of {name!r} contains CR, LF or NUL")
        if not all(c == "\t" or " " <= c <= "~" for c in header_value):
            raise ValueError(
                f"the value of {name!r} must be printable ASCII (RFC 9110 field values; "
                "encode other text, e.g. percent- or base64-encoding)"
            )
        if len(header_value) > MAX_HEADER_VALUE_CHARS:
            raise ValueError(f"the value of {name!r} is over {MAX_HEADER_VALUE_CHARS} characters")
    return value


def _utf8_secret(value: SecretStr | None) -> SecretStr | None:
    """Refuse a lone surrogate (``"\\ud800"`` is valid JSON, not text): secrets are sealed and
    signed as UTF-8."""
    if value is not None:
        try:
            value.get_secret_value().encode("utf-8")
        except UnicodeEncodeError:
            raise ValueError("must be Unicode text (no lone surrogate like \\ud800)") from None
    return value


#: A write-only secret as accepted from the API: UTF-8-encodable text.
Utf8Secret = AfterValidator(_utf8_secret)


class BasicAuthIn(BaseModel):
    """``config.auth``: HTTP Basic auth for the deliveries (password write-only)."""

    model_config = STRICT

    auth_type: Literal["basic"] = "basic"
    username: Annotated[StrictStr, Field(min_length=1, max_length=256)]
    password: Annotated[SecretStr | None, Field(max_length=MAX_SECRET_CHARS), Utf8Secret] = None

    @field_validator("username")
    @classmethod
    def _no_colon(cls, value: str) -> str:
        if ":" in value or any(c in value for c in "\r\n\0"):
            raise ValueError("a basic-auth username cannot contain ':', CR, LF or NUL")
        return value


class SubscriptionConfigIn(BaseModel):
    """``config``: delivery options of a subscription."""

    model_config = STRICT

    auth: BasicAuthIn | None = None


def _countdown_schema(schema: dict[str, Any]) -> None:
    """OpenAPI: ``retry_countdown_config`` as the countdown module's union on ``choice``.

    The field is validated by :func:`oms_webhooks.delivery.retry.schedule.validate_schedule`
    (its messages name ``retry_countdown_config.kwargs.<name>``); this only
    documents the shape, and only when the document is generated.
    """
    nullable = "anyOf" in schema
    description = schema.get("description")
    schema.clear()
    union = config_json_schema()
    schema.update({"anyOf": [union, {"type": "null"}]} if nullable else union)
    if description:
        schema["description"] = description


class SubscriptionIn(BaseModel):
    """Body of ``POST /whisperer/hooks/`` and ``PUT /whisperer/hooks/{id}/``.

    ``secret_key`` and ``config.auth.password`` are write-only: omitted on a
    PUT they keep their stored value, ``null`` removes it.
    """

    model_config = STRICT

    event_type: Annotated[
        StrictStr, Field(description="Catalogue event type, e.g. package.created")
    ]
    target_url: Annotated[StrictStr, Field(max_length=2048, description="Absolute http(s) URL")]
    retry_countdown_config: dict[str, Any] | None = Field(
        None,
        description='{"choice": "fixed|linear|exponential|random", "kwargs": {...}}; '
        'default {"choice": "exponential", "kwargs": {"base": 2}}; validated with the '
        "whole schedule (its worst case must end within the delivery retention)",
        json_schema_extra=_countdown_schema,
    )
    max_retries: StrictInt | None = Field(None, description="0-50, default 18")
    additional_headers: dict[str, StrictStr] | None = None
    secret_key: Annotated[
        SecretStr | None, Field(min_length=1, max_length=MAX_SECRET_CHARS), Utf8Secret
    ] = None
    is_active: StrictBool = True
    config: SubscriptionConfigIn | None = None
    filter: StrictStr | None = Field(
        None,
        description=_FILTER_DESCRIPTION,
        examples=FILTER_EXAMPLES,
        json_schema_extra={"maxLength": MAX_FILTER_CHARS},
    )

    @field_validator("event_type")
    @classmethod
    def _event_type(cls, value: str) -> str:
        return normalize_event_type(value)

    @field_validator("filter")
    @classmethod
    def _filter(cls, value: str | None) -> str | None:
        return None if value is None else validate_filter(value)

    @field_validator("target_url")
    @classmethod
    def _target_url(cls, value: str) -> str:
        return validate_target_url(value, allow_private=get_settings().allow_private_targets)

    @field_validator("additional_headers")
    @classmethod
    def _headers(cls, value: dict[str, str] | None) -> dict[str, str] | None:
        return check_additional_headers(value)


class SubscriptionPatch(SubscriptionIn):
    """Body of ``PATCH /whisperer/hooks/{id}/``: any subset of the fields."""

    event_type: StrictStr | None = None  # type: ignore[assignment]
    target_url: Annotated[StrictStr | None, Field(max_length=2048)] = None  # type: ignore[assignment]
    is_active: StrictBool | None = None  # type: ignore[assignment]

    @field_validator("event_type")
    @classmethod
    def _event_type(cls, value: str | None) -> str | None:  # type: ignore[override]
        return None if value is None else normalize_event_type(value)

    @field_validator("target_url")
    @classmethod
    def _target_url(cls, value: str | None) -> str | None:  # type: ignore[override]
        if value is None:
            return None
        return validate_target_url(value, allow_private=get_settings().allow_private_targets)


class BasicAuthOut(BaseModel):
    """``config.auth`` as returned: never the password."""

    auth_type: Literal["basic"] = "basic"
    username: str
    has_password: bool


class SubscriptionConfigOut(BaseModel):
    """``config`` as returned."""

    auth: BasicAuthOut | None = None


class CircuitOut(BaseModel):
    """A subscription's target as its circuit breaker sees it (DESIGN §9)."""

    state: Literal["closed", "open", "half_open"] = Field(
        "closed",
        description="open: deliveries are held (still pending, no retry used) until `until`; "
        "half_open: one probe is being made; closed: deliveries flow",
    )
    until: datetime | None = Field(
        None, description="When an open circuit lets a probe through; null when closed"
    )


class SubscriptionOut(BaseModel):
    """A subscription as the API returns it (no secret, no password)."""

    id: str
    event_type: str
    target_url: str
    retry_countdown_config: dict[str, Any] = Field(json_schema_extra=_countdown_schema)
    max_retries: int
    additional_headers: dict[str, str] | None
    has_secret_key: bool
    previous_secret_expires_at: datetime | None = Field(
        None,
        description="After a secret rotation: until when the previous secret still signs "
        "(Standard Webhooks signatures only); null otherwise",
    )
    is_active: bool
    failing_since: datetime | None = Field(
        None,
        description="Time of the first failed attempt after the last success (or creation); "
        "null while deliveries succeed. After OMS_WEBHOOKS_AUTO_DISABLE_AFTER_SECONDS "
        "(default 5 days) of unbroken failure the subscription is turned inactive",
    )
    disabled_reason: str | None = Field(
        None,
        description='Why the service turned it inactive: "failing since <time>" or '
        '"410 Gone"; null if active or deactivated by a change',
    )
    disabled_at: datetime | None = Field(
        None, description="When it was turned inactive (by the service or a change); null if active"
    )
    circuit: CircuitOut = Field(
        default_factory=CircuitOut,
        description="The target's circuit breaker for this tenant: after "
        "OMS_WEBHOOKS_BREAKER_THRESHOLD (5) timeouts or connection failures in a row, "
        "deliveries are held, not attempted, until a probe gets an answer",
    )
    config: SubscriptionConfigOut
    filter: str | None = Field(None, description=_FILTER_DESCRIPTION, examples=FILTER_EXAMPLES)
    created_date: datetime
    modified_date: datetime


class SubscriptionPage(BaseModel):
    """One page of subscriptions; ``next`` is the path of the next page or null."""

    results: list[SubscriptionOut]
    next: str | None


class Registry(BaseModel):
    """The event catalogue (``GET /whisperer/hooks/registry/``)."""

    event_types: list[str]


class ErrorOut(BaseModel):
    """Every error answer: ``{"code", "detail", "errors": {field: [messages]}}``."""

    code: str
    detail: str
    errors: dict[str, list[str]] = Field(default_factory=dict)


class RotateSecretIn(BaseModel):
    """Body of ``POST /whisperer/hooks/{id}/rotate_secret/`` (optional)."""

    model_config = STRICT

    secret_key: Annotated[SecretStr, Field(min_length=1, max_length=MAX_SECRET_CHARS), Utf8Secret]


class RotateSecretOut(SubscriptionOut):
    """The subscription after a rotation; ``secret_key`` only when the service generated it."""

    secret_key: str | None = Field(
        None, description="The generated secret, shown once; null when you gave the secret"
    )
