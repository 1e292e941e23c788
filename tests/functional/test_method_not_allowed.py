"""Methods and paths: a known path with another method is a 405 naming the allowed ones, an
unknown path a 404, and a token comes first (found by the schemathesis run, tests/fuzz)."""

from __future__ import annotations

import pytest
import requests

from oms_webhooks_local.stack import LocalStack
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
