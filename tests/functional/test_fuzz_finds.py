"""What the schemathesis run (tests/fuzz) found, kept as plain regression tests."""

from __future__ import annotations

import pytest
import requests

from oms_webhooks.local.stack import LocalStack
from tests.functional.helpers import api


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [
        # A static path that also matches the /hooks/{id}/ pattern allows only its own methods.
        ("TRACE", "/whisperer/hooks/registry/", "GET"),
        ("OPTIONS", "/whisperer/hooks/registry/", "GET"),
        ("DELETE", "/whisperer/hooks/", "GET, POST"),
        ("POST", "/whisperer/hook_events/", "GET"),
        ("TRACE", "/whisperer/hooks/0/", "DELETE, GET, PATCH, PUT"),
    ],
)
def test_known_path_with_another_method_is_405_with_allow(
    client: requests.Session, method: str, path: str, allow: str
) -> None:
    # Found: TRACE /whisperer/hooks/registry/ answered 404, as for an unknown path.
    response = client.request(method, path)
    assert response.status_code == 405, response.text
    assert response.headers["Allow"] == allow
    body = response.json()
    assert body["code"] == "method_not_allowed"
    assert set(body) == {"code", "detail", "errors"}


def test_unknown_path_is_still_404(client: requests.Session) -> None:
    response = client.get("/whisperer/nothing-here/")
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"


def test_405_needs_a_token_first(stack: LocalStack) -> None:
    assert api(stack).request("TRACE", "/whisperer/hooks/registry/").status_code == 401


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
