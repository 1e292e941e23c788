"""Query string helpers of the API's list endpoints: known parameters, event type, dates, pages.

A typo'd or unknown parameter is a 400 naming it (it would otherwise
silently filter nothing); an event type is normalised as subscriptions store
it; date filters take ISO 8601 only; ``next`` links carry the filters and the
cursor of the next page.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated, Any
from urllib.parse import urlencode

from aws_lambda_powertools.utilities.data_classes import APIGatewayProxyEvent
from pydantic import BeforeValidator

from oms_webhooks.api.delivery_schemas import iso_8601_text
from oms_webhooks.errors import ServiceError, ValidationFailed
from oms_webhooks.routing.event_types import normalize_event_type


def only_query_params(event: APIGatewayProxyEvent, *allowed: str) -> None:
    """400 for a query parameter the endpoint does not have (a typo'd filter
    would otherwise silently return everything).

    Raises:
        ValidationFailed: naming each unknown parameter.
    """
    given = set(event.query_string_parameters or {})
    unknown = sorted(given - set(allowed))
    if unknown:
        raise ValidationFailed(
            f"unknown query parameter {unknown[0]!r}; this endpoint takes: {', '.join(allowed)}",
            {name: ["unknown query parameter"] for name in unknown},
        )


def bad_query(field: str, message: str) -> ServiceError:
    """The 400 of a query parameter ``field`` refused for ``message``."""
    return ValidationFailed(f"Invalid input: {field}: {message}", {field: [message]})


def event_type_filter(event_type: str | None) -> str | None:
    """The ``event_type`` filter normalised (dotted or hyphenated in, dotted out), or None.

    Raises:
        ValidationFailed: 400 on ``event_type`` for a name that is not an event type.
    """
    if event_type is None:
        return None
    try:
        return normalize_event_type(event_type)
    except ValueError as exc:
        raise bad_query("event_type", str(exc)) from None


def page_path(page_cursor: str | None, params: dict[str, Any], path: str) -> str | None:
    """The ``next`` link: ``path`` with the non-None ``params`` and ``cursor`` (None: last page)."""
    if page_cursor is None:
        return None
    query = {k: v for k, v in params.items() if v is not None}
    query["cursor"] = page_cursor
    return f"{path}?{urlencode(query)}"


def _iso_8601_only(value: Any) -> Any:
    """Refuse what pydantic would read as Unix seconds (``0.5``): the filter takes ISO 8601.

    A naive date-time is taken as UTC. An offset's ``+`` must be sent
    percent-encoded (``%2B``): in a query string a bare ``+`` means a space.
    """
    if not isinstance(value, str):
        return value
    iso_8601_text(value)
    if re.search(r"T\d{2}:\d{2}(:\d{2}(\.\d+)?)? \d{2}:?\d{2}\Z", value):
        raise ValueError(
            "looks like a UTC offset whose '+' arrived as a space: encode it as %2B "
            "(e.g. 2024-05-01T12:00:00%2B03:00) or use Z"
        )
    return value


#: A query date-time filter: ISO 8601 only (see :func:`_iso_8601_only`).
IsoDatetime = Annotated[datetime, BeforeValidator(_iso_8601_only)]


def utc(value: datetime | None) -> datetime | None:
    """``value`` in UTC (a naive one taken as UTC), or None."""
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
