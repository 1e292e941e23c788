"""Helpers for tests that talk to a running local stack over HTTP."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import requests

from oms_webhooks.local.stack import LocalStack

#: Seconds a test waits for one HTTP answer from the local stack.
HTTP_TIMEOUT = 10.0


@dataclass(frozen=True)
class Tenant:
    """A fresh tenant of one test and its token (the ``tenant`` fixture)."""

    name: str
    token: str
    token_id: str


class ApiSession(requests.Session):
    """A ``requests.Session`` bound to the stack's API: paths are relative to its base URL.

    ``session.get("/whisperer/hooks/")`` requests ``<api_url>/whisperer/hooks/``
    with the session's headers and a default timeout of :data:`HTTP_TIMEOUT`.
    """

    def __init__(self, base_url: str) -> None:
        super().__init__()
        self.base_url = base_url.rstrip("/")

    def request(  # type: ignore[override]
        self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any
    ) -> requests.Response:
        """Send a request; ``url`` starting with ``/`` is relative to :attr:`base_url`."""
        if isinstance(url, str) and url.startswith("/"):
            url = self.base_url + url
        kwargs.setdefault("timeout", HTTP_TIMEOUT)
        return super().request(method, url, *args, **kwargs)


def api(stack: LocalStack, token: str | None = None) -> ApiSession:
    """A session on ``stack``'s API; sends ``Authorization: Token <token>`` if ``token``."""
    session = ApiSession(stack.api_url)
    if token is not None:
        session.headers["Authorization"] = f"Token {token}"
    return session


def assert_unauthorized(response: requests.Response) -> None:
    """Assert that ``response`` is API Gateway's 401 with its JSON body (DESIGN §3 error shape)."""
    from oms_webhooks.local.gateway import UNAUTHORIZED_BODY

    assert response.status_code == 401, response.text
    assert response.headers["Content-Type"].startswith("application/json")
    assert response.json() == UNAUTHORIZED_BODY
    assert set(response.json()) == {"code", "detail", "errors"}


def subscribe(client: requests.Session, **fields: Any) -> dict[str, Any]:
    """POST a subscription with ``fields``; asserts 201 and returns the answer."""
    response = client.post("/whisperer/hooks/", json=fields)
    assert response.status_code == 201, response.text
    return dict(response.json())


def wait_until(predicate: Callable[[], Any], timeout: float = 10.0) -> Any:
    """Poll ``predicate`` every 50 ms until it returns something truthy; return that."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"condition not met within {timeout} s")
