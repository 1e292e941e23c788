"""What the schemathesis run (tests/fuzz) found, kept as plain regression tests."""

from __future__ import annotations

import pytest
import requests

from oms_webhooks.local.stack import LocalStack
from tests.functional.helpers import api, subscribe


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


# Found by the property tests (tests/unit/test_properties.py): a JSON string may hold a lone
# surrogate escape ("\ud800"); SecretStr took it, and sealing the secret (UTF-8) raised: a 502.
_LONE_SURROGATE_BODIES = [
    '{"event_type": "package.created", "target_url": "http://127.0.0.1:9/a", '
    '"secret_key": "s\\ud800"}',
    '{"event_type": "package.created", "target_url": "http://127.0.0.1:9/b", '
    '"config": {"auth": {"username": "u", "password": "\\udfff"}}}',
]


@pytest.mark.parametrize("body", _LONE_SURROGATE_BODIES)
def test_secret_with_a_lone_surrogate_is_400_not_502(client: requests.Session, body: str) -> None:
    response = client.post(
        "/whisperer/hooks/", data=body.encode(), headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 400, response.text
    assert response.json()["code"] == "invalid"
    assert "surrogate" in response.text


def test_patch_and_rotate_refuse_a_lone_surrogate_secret(client: requests.Session) -> None:
    hook = subscribe(client, event_type="package.created", target_url="http://127.0.0.1:9/c")
    headers = {"Content-Type": "application/json"}
    path = f"/whisperer/hooks/{hook['id']}/"
    for url in (path, path + "rotate_secret/"):
        method = "PATCH" if url == path else "POST"
        response = client.request(method, url, data=b'{"secret_key": "\\ud83d"}', headers=headers)
        assert response.status_code == 400, (url, response.text)
        assert "secret_key" in response.json()["errors"]
    assert client.get(path).json()["has_secret_key"] is False
