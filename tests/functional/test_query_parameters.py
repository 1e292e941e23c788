"""Query parameters of the list endpoints: unknown ones are a 400, time filters are ISO 8601
(an unencoded ``+`` gets a hint)."""

from __future__ import annotations

from typing import Any

import pytest
import requests


def test_an_unencoded_plus_in_a_time_filter_gets_a_hint(client: Any) -> None:
    response = client.get("/whisperer/hook_events/?created_date__gte=2026-11-29T10:00:00+03:00")
    assert response.status_code == 400
    assert "%2B" in response.text
    encoded = client.get("/whisperer/hook_events/?created_date__gte=2026-11-29T10:00:00%2B03:00")
    assert encoded.status_code == 200


@pytest.mark.parametrize(
    ("path", "param"),
    [("/whisperer/hook_events/", "status"), ("/whisperer/hooks/", "foo")],
)
def test_unknown_query_parameters_are_400(client: Any, path: str, param: str) -> None:
    response = client.get(f"{path}?{param}=delivered")
    assert response.status_code == 400
    assert param in response.json()["errors"]


@pytest.mark.parametrize("value", ["0.5", "1700000000", "-1", "now", "2024"])
def test_delivery_log_date_filter_is_iso_8601_only(client: requests.Session, value: str) -> None:
    # Found: GET /whisperer/hook_events/?created_date__lte=0.5 answered 200 (read as Unix seconds).
    for name in ("created_date__gte", "created_date__lte"):
        response = client.get("/whisperer/hook_events/", params={name: value})
        assert response.status_code == 400, response.text
        assert name in response.json()["errors"]


@pytest.mark.parametrize(
    "value",
    ["2024-05-01T12:00:00Z", "2024-05-01T12:00:00+02:00", "2024-05-01T12:00:00", "2024-05-01"],
)
def test_delivery_log_date_filter_takes_iso_dates(client: requests.Session, value: str) -> None:
    response = client.get("/whisperer/hook_events/", params={"created_date__gte": value})
    assert response.status_code == 200, response.text
