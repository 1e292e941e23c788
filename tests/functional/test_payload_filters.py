"""Payload filters end to end on the local stack (DESIGN §11).

The API over real HTTP (create, PUT, PATCH, validation, the resource, the
OpenAPI document), then put_events → bus → router → SQS → dispatcher → a
real receiver on 127.0.0.1: a filtered-out event makes no delivery while a
matching one arrives, and a filter that fails on a payload costs only its
own subscription its delivery.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import requests
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from oms_webhooks.routing.filters import MAX_FILTER_CHARS, MAX_FILTER_NODES
from oms_webhooks_local.publisher import publish_event
from oms_webhooks_local.stack import LocalStack
from tests.functional.helpers import subscribe, wait_until
from tests.receivers import Receiver

EVENTS = Path(__file__).parents[1] / "cases" / "events"
STORE_12 = "stock_location.id == `12`"


def _detail(event_type: str) -> dict[str, Any]:
    return dict(json.loads((EVENTS / f"{event_type}.json").read_text(encoding="utf-8")))


def _errors(response: requests.Response) -> dict[str, list[str]]:
    assert response.status_code == 400, response.text
    body = response.json()
    assert set(body) == {"code", "detail", "errors"}, body
    return dict(body["errors"])


def _deliveries(client: requests.Session) -> list[dict[str, Any]]:
    response = client.get("/whisperer/hook_events/")
    assert response.status_code == 200, response.text
    return list(response.json()["results"])


# --- the API ------------------------------------------------------------------------


def test_filter_is_stored_shown_changed_and_removed(
    client: requests.Session, receiver: Receiver
) -> None:
    # GIVEN a subscription created with a filter
    created = subscribe(
        client, event_type="package.created", target_url=receiver.url("/"), filter=STORE_12
    )
    path = f"/whisperer/hooks/{created['id']}/"
    # THEN the resource shows it, on create and on read
    assert created["filter"] == STORE_12
    assert client.get(path).json()["filter"] == STORE_12
    # WHEN a PATCH changes something else, the filter stays
    patched = client.patch(path, json={"max_retries": 3})
    assert patched.status_code == 200, patched.text
    assert patched.json()["filter"] == STORE_12
    # WHEN a PATCH sets another filter, it is replaced
    other = "contains(['sample-cargo'], shipment.carrier)"
    assert client.patch(path, json={"filter": other}).json()["filter"] == other
    # WHEN a PATCH sends null, it is removed
    removed = client.patch(path, json={"filter": None})
    assert removed.status_code == 200 and removed.json()["filter"] is None
    # AND a PUT sets it, and a PUT without it removes it (a PUT replaces every field)
    body = {"event_type": "package.created", "target_url": receiver.url("/")}
    assert client.put(path, json={**body, "filter": STORE_12}).json()["filter"] == STORE_12
    assert client.put(path, json=body).json()["filter"] is None
    # AND a subscription without one shows null
    plain = subscribe(client, event_type="shipment.created", target_url=receiver.url("/"))
    assert plain["filter"] is None


@pytest.mark.parametrize(
    ("filter_", "reason"),
    [
        ("stock_location.id == 12", 'Parse error at column 21, token "12" (NUMBER)'),
        ("status ==", "Incomplete expression"),
        ("", "cannot be empty"),
        ("nosuch(status)", "Unknown function: nosuch()"),
        ("length(items, status)", "Expected 1 argument for function length(), received 2"),
        ("a" * (MAX_FILTER_CHARS + 1), f"at most {MAX_FILTER_CHARS} characters"),
        (" || ".join(f"id == `{n}`" for n in range(17)), f"at most {MAX_FILTER_NODES} nodes"),
        ("status == 'x\ud800'", "lone surrogate"),
    ],
    ids=[
        "bare-number",
        "incomplete",
        "empty",
        "unknown-function",
        "arity",
        "long",
        "nodes",
        "lone-surrogate",
    ],
)
def test_bad_filters_are_400_naming_filter_on_create_put_and_patch(
    client: requests.Session, receiver: Receiver, filter_: str, reason: str
) -> None:
    body = {"event_type": "package.created", "target_url": receiver.url("/"), "filter": filter_}
    # WHEN a create carries it: 400 naming filter with the reason, nothing stored
    errors = _errors(client.post("/whisperer/hooks/", json=body))
    assert list(errors) == ["filter"]
    assert reason in errors["filter"][0], errors
    assert client.get("/whisperer/hooks/").json()["results"] == []
    # WHEN a PUT or a PATCH carries it: the same 400, the subscription unchanged
    existing = subscribe(client, event_type="package.created", target_url=receiver.url("/"))
    path = f"/whisperer/hooks/{existing['id']}/"
    for method, payload in (("PUT", body), ("PATCH", {"filter": filter_})):
        errors = _errors(client.request(method, path, json=payload))
        assert list(errors) == ["filter"] and reason in errors["filter"][0], (method, errors)
    assert client.get(path).json() == existing


def test_filter_must_be_a_string(client: requests.Session, receiver: Receiver) -> None:
    body = {"event_type": "package.created", "target_url": receiver.url("/"), "filter": {"a": 1}}
    assert list(_errors(client.post("/whisperer/hooks/", json=body))) == ["filter"]


def test_openapi_document_describes_the_filter_with_examples(stack: LocalStack) -> None:
    doc = requests.get(f"{stack.api_url}/whisperer/openapi.json", timeout=10).json()
    schemas = doc["components"]["schemas"]
    field = schemas["SubscriptionIn"]["properties"]["filter"]
    assert STORE_12 in json.dumps(field["examples"])
    assert "JMESPath" in field["description"]
    assert "filter" in schemas["SubscriptionOut"]["properties"]
    assert "filter" in schemas["SubscriptionPatch"]["properties"]


# --- end to end ----------------------------------------------------------------------


def test_only_events_that_pass_the_filter_are_delivered(
    client: requests.Session, receiver: Receiver
) -> None:
    # GIVEN one subscription filtered on stock location 12, one on 13, one unfiltered
    kwargs = {"event_type": "package.created"}
    store_12 = subscribe(client, **kwargs, target_url=receiver.url("/12"), filter=STORE_12)
    store_13 = subscribe(
        client, **kwargs, target_url=receiver.url("/13"), filter="stock_location.id == `13`"
    )
    subscribe(client, **kwargs, target_url=receiver.url("/all"))
    # WHEN a package of stock location 12 is published
    detail = _detail("package.created")
    publish_event("package.created", detail)
    # THEN it reaches store 12's and the unfiltered subscription, not store 13's
    receiver.wait_for(2)
    time.sleep(0.5)
    assert sorted(r.path for r in receiver.requests) == ["/12", "/all"]
    # WHEN a package of stock location 13 is published
    detail_13 = {**detail, "id": 4103, "stock_location": {**detail["stock_location"], "id": 13}}
    publish_event("package.created", detail_13)
    # THEN store 13 gets it and store 12 does not
    receiver.wait_for(4)
    time.sleep(0.5)
    paths = sorted(r.path for r in receiver.requests)
    assert paths == ["/12", "/13", "/all", "/all"]
    (to_13,) = [r for r in receiver.requests if r.path == "/13"]
    assert json.loads(to_13.body)["payload"]["id"] == 4103
    # AND the delivery log holds exactly what was sent: nothing for the filtered-out ones
    logged = wait_until(lambda: [d for d in _deliveries(client) if d["delivered"]] or None)
    logged = _deliveries(client)
    assert len(logged) == 4
    assert sum(d["webhook"] == store_12["id"] for d in logged) == 1
    assert sum(d["webhook"] == store_13["id"] for d in logged) == 1


def test_zero_is_truthy_end_to_end(client: requests.Session, receiver: Receiver) -> None:
    # GIVEN a filter whose result is 0 on the payload (JMESPath: 0 is true)
    subscribe(
        client,
        event_type="stock_location.updated",
        target_url=receiver.url("/"),
        filter="offset",
    )
    # WHEN an event with offset 0, then one without offset, is published
    publish_event("stock_location.updated", {"id": 1, "offset": 0})
    publish_event("stock_location.updated", {"id": 2})
    # THEN only the first is delivered
    receiver.wait_for(1)
    time.sleep(1.0)
    assert [json.loads(r.body)["payload"]["id"] for r in receiver.requests] == [1]


def test_a_filter_that_fails_costs_only_its_own_delivery(
    client: requests.Session, receiver: Receiver
) -> None:
    # GIVEN a filter that fails on this payload (length() of a number), and a healthy one
    subscribe(
        client,
        event_type="shipment.status.updated",
        target_url=receiver.url("/bad"),
        filter="length(id) > `0`",
    )
    subscribe(
        client,
        event_type="shipment.status.updated",
        target_url=receiver.url("/good"),
        filter="status == 'in_transit'",
    )
    # WHEN the event is published
    publish_event("shipment.status.updated", _detail("shipment.status.updated"))
    # THEN the healthy subscription gets it, once, and the failing one nothing
    receiver.wait_for(1)
    time.sleep(1.0)
    assert [r.path for r in receiver.requests] == ["/good"]


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def router_log() -> Iterator[_Records]:
    """The router's log records (Powertools' logger is the stdlib logger "oms-webhooks")."""
    handler = _Records()
    logger = logging.getLogger("oms-webhooks")
    logger.addHandler(handler)
    yield handler
    logger.removeHandler(handler)


def _ingress_record(event_type: str, detail: dict[str, Any]) -> SQSRecord:
    event = {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": event_type,
        "source": "oms",
        "time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "detail": detail,
    }
    return SQSRecord({"messageId": str(uuid.uuid4()), "body": json.dumps(event), "attributes": {}})


def test_filter_errors_are_logged_with_the_subscription_and_counted(
    client: requests.Session, receiver: Receiver, router_log: _Records
) -> None:
    from oms_webhooks.routing import ingress

    # GIVEN a subscription whose filter fails on the payload (a string compared with a number)
    failing = subscribe(
        client,
        event_type="transfer.status.transferred",
        target_url=receiver.url("/"),
        filter="number > `300`",
    )
    ingress.metrics.clear_metrics()
    # WHEN the router handles the event
    ingress.record_handler(
        _ingress_record("transfer.status.transferred", _detail("transfer.status.in_transit"))
    )
    # THEN it does not raise, logs the failure with the subscription id, and counts it
    warnings = [r for r in router_log.records if r.levelno >= logging.WARNING]
    assert [w.getMessage() for w in warnings] == [
        "payload filter failed: no delivery for this subscription"
    ]
    assert getattr(warnings[0], "subscription_id", None) == failing["id"]
    assert "TypeError" in str(getattr(warnings[0], "filter_error", ""))
    metric_set = ingress.metrics.metric_set
    assert metric_set["FilterErrors"]["Value"] == [1.0]
    ingress.metrics.clear_metrics()
    # AND no delivery was made
    time.sleep(0.5)
    assert receiver.requests == [] and _deliveries(client) == []
