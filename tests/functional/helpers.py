"""Helpers for tests that talk to a running local stack over HTTP."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest
import requests

from oms_webhooks.aws_clients import client as aws_client
from oms_webhooks.settings import get_settings
from oms_webhooks.storage import target_state
from oms_webhooks.storage.models import SubscriptionModel
from oms_webhooks_local.publisher import publish_event
from oms_webhooks_local.stack import LocalStack
from tests.receivers import Receiver, Response

#: Seconds a test waits for one HTTP answer from the local stack.
HTTP_TIMEOUT = 10.0
#: A ``retry_countdown_config`` of one second between attempts (keeps retry tests fast).
FAST = {"choice": "fixed", "kwargs": {"seconds": 1}}


def subscription_item(
    tenant: str | None = None,
    *,
    event_type: str = "package.created",
    target_url: str = "https://partner.example/hook",
    max_retries: int = 3,
) -> SubscriptionModel:
    """An unsaved, active subscription item (for tests that call the stores directly).

    ``tenant`` defaults to a fresh one; the countdown is :data:`FAST`.
    """
    now = datetime.now(UTC)
    return SubscriptionModel(
        tenant or f"t-{uuid.uuid4().hex[:12]}",
        uuid.uuid4().hex,
        event_type=event_type,
        target_url=target_url,
        retry_countdown_config=FAST,
        max_retries=max_retries,
        is_active=True,
        created_date=now,
        modified_date=now,
    )


@contextmanager
def fresh_settings(monkeypatch: pytest.MonkeyPatch, **values: str) -> Iterator[None]:
    """Run with ``OMS_WEBHOOKS_<NAME>=value`` for each of ``values``, then restore.

    Settings and the breaker items' cache are read again on entry and on exit,
    so neither the values nor what was cached under them outlive the block.
    """
    for name, value in values.items():
        monkeypatch.setenv(f"OMS_WEBHOOKS_{name}", value)
    get_settings.cache_clear()
    target_state.clear_cache()
    try:
        yield
    finally:
        monkeypatch.undo()
        get_settings.cache_clear()
        target_state.clear_cache()


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
    from oms_webhooks_local.gateway_responses import UNAUTHORIZED_BODY

    assert response.status_code == 401, response.text
    assert response.headers["Content-Type"].startswith("application/json")
    assert response.json() == UNAUTHORIZED_BODY
    assert set(response.json()) == {"code", "detail", "errors"}


def subscribe(client: requests.Session, **fields: Any) -> dict[str, Any]:
    """POST a subscription with ``fields``; asserts 201 and returns the answer."""
    response = client.post("/whisperer/hooks/", json=fields)
    assert response.status_code == 201, response.text
    return dict(response.json())


def shown_subscription(client: requests.Session, subscription_id: str) -> dict[str, Any]:
    """The subscription as the API shows it (GET, asserts 200)."""
    response = client.get(f"/whisperer/hooks/{subscription_id}/")
    assert response.status_code == 200, response.text
    return dict(response.json())


def deliveries_of(client: requests.Session, subscription_id: str) -> list[dict[str, Any]]:
    """The delivery log's first page, only the deliveries of ``subscription_id``."""
    results = client.get("/whisperer/hook_events/").json()["results"]
    return [d for d in results if d["webhook"] == subscription_id]


def subscribe_to_a_dead_partner(
    client: requests.Session,
    receiver: Receiver,
    setting: Callable[[str, str], None],
    *,
    event_type: str,
    target_url: str,
    payload: dict[str, Any],
) -> dict[str, Any]:
    """Subscribe to a partner that only fails, publish one event; the subscription's answer.

    Auto-disable after 2 s of unbroken failure (``setting``), ``receiver``
    answers 503 to its next 50 requests, the subscription retries every second
    (:data:`FAST`, 20 retries), and one ``event_type`` event with ``payload``
    is published.
    """
    setting("auto_disable_after_seconds", "2")
    receiver.respond(*[Response(status=503)] * 50)
    sub = subscribe(
        client,
        event_type=event_type,
        target_url=target_url,
        retry_countdown_config=FAST,
        max_retries=20,
    )
    publish_event(event_type, payload)
    return sub


def wait_until(predicate: Callable[[], Any], timeout: float = 30.0) -> Any:
    """Poll ``predicate`` every 50 ms until it returns something truthy; return that.

    ``timeout`` only bounds a failure (a loaded 2-core CI machine needs room).
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"condition not met within {timeout} s")


class Catcher:
    """An SQS queue behind an EventBridge rule for the operational source."""

    def __init__(self) -> None:
        name = f"ops-{uuid.uuid4().hex[:12]}"
        self.sqs, self.events = aws_client("sqs"), aws_client("events")
        self.bus, self.rule = get_settings().bus_name, name
        self.url = self.sqs.create_queue(QueueName=name)["QueueUrl"]
        arn = self.sqs.get_queue_attributes(QueueUrl=self.url, AttributeNames=["QueueArn"])
        pattern = {"source": [get_settings().operational_source]}
        self.events.put_rule(Name=name, EventBusName=self.bus, EventPattern=json.dumps(pattern))
        self.events.put_targets(
            Rule=name,
            EventBusName=self.bus,
            Targets=[{"Id": "q", "Arn": arn["Attributes"]["QueueArn"]}],
        )
        self.seen: list[dict[str, Any]] = []

    def close(self) -> None:
        self.events.remove_targets(Rule=self.rule, EventBusName=self.bus, Ids=["q"])
        self.events.delete_rule(Name=self.rule, EventBusName=self.bus)
        self.sqs.delete_queue(QueueUrl=self.url)

    def drain(self) -> list[dict[str, Any]]:
        got = self.sqs.receive_message(QueueUrl=self.url, MaxNumberOfMessages=10, WaitTimeSeconds=1)
        self.seen += [json.loads(m["Body"]) for m in got.get("Messages", [])]
        return self.seen

    def wait_for(
        self, detail_type: str, predicate: Callable[[dict[str, Any]], bool], timeout: float = 20
    ) -> dict[str, Any]:
        """The first event of ``detail_type`` whose detail satisfies ``predicate``."""

        def find() -> dict[str, Any] | None:
            for event in self.drain():
                if event["detail-type"] == detail_type and predicate(event["detail"]):
                    return event
            return None

        found: dict[str, Any] = wait_until(find, timeout=timeout)
        return found
