"""Messaging on the local stack: provisioning, EventBridge → SQS, and the SQS pollers.

The pollers are checked against dedicated queues (unique names, short
visibility) with test handlers, so the shared stack's own pollers and other
tests are not disturbed; the stack's own pollers run the real router.
"""

from __future__ import annotations

import io
import json
import logging
import os
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pytest
from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.typing import LambdaContext

from oms_webhooks.limits import SQS_MAX_RETENTION_SECONDS
from oms_webhooks.resources import (
    DELIVERY_QUEUE,
    DELIVERY_SLOW_QUEUE,
    INGRESS_QUEUE,
    QUEUES,
    RECOVERY_QUEUE,
    RULE_NAME,
    ingress_event_pattern,
)
from oms_webhooks.settings import get_settings
from oms_webhooks_local.lanes import DISPATCHER_FUNCTION, RECOVERER_FUNCTION, ROUTER_FUNCTION
from oms_webhooks_local.messaging import RULE_TARGET_ID
from oms_webhooks_local.pollers import QueuePoller, failed_message_ids, sqs_client
from oms_webhooks_local.provision import provision
from oms_webhooks_local.stack import LocalStack

WAIT = 10.0  # seconds a test waits for something asynchronous


def _client(stack: LocalStack, service: str) -> Any:
    return boto3.client(service, endpoint_url=stack.aws_endpoint_url, region_name="us-east-1")


def _wait_for(predicate: Callable[[], bool], timeout: float = WAIT) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting")
        time.sleep(0.05)


# -- provisioning ------------------------------------------------------------------


def test_provisioning_creates_queues_bus_and_rule_idempotently(stack: LocalStack) -> None:
    lines = provision(stack.aws_endpoint_url)
    assert not [line for line in lines if line.endswith(("created", "updated"))], lines
    sqs, events = _client(stack, "sqs"), _client(stack, "events")
    for spec in QUEUES:
        dlq_url = sqs.get_queue_url(QueueName=spec.dlq_name)["QueueUrl"]
        dlq = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["All"])["Attributes"]
        assert dlq["MessageRetentionPeriod"] == str(SQS_MAX_RETENTION_SECONDS)
        url = sqs.get_queue_url(QueueName=spec.name)["QueueUrl"]
        attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
        assert attributes["VisibilityTimeout"] == str(spec.visibility_timeout)
        assert attributes["MessageRetentionPeriod"] == str(spec.retention)
        assert json.loads(attributes["RedrivePolicy"]) == {
            "deadLetterTargetArn": dlq["QueueArn"],
            "maxReceiveCount": spec.max_receive_count,
        }
    settings = get_settings()
    rule = events.describe_rule(Name=RULE_NAME, EventBusName=settings.bus_name)
    assert rule["State"] == "ENABLED"
    assert json.loads(rule["EventPattern"]) == ingress_event_pattern(settings.event_source)
    targets = events.list_targets_by_rule(Rule=RULE_NAME, EventBusName=settings.bus_name)
    ingress_url = sqs.get_queue_url(QueueName=INGRESS_QUEUE.name)["QueueUrl"]
    ingress = sqs.get_queue_attributes(QueueUrl=ingress_url, AttributeNames=["All"])["Attributes"]
    assert {"Id": RULE_TARGET_ID, "Arn": ingress["QueueArn"]} in targets["Targets"]
    (statement,) = json.loads(ingress["Policy"])["Statement"]
    assert statement["Principal"] == {"Service": "events.amazonaws.com"}
    assert "sqs:SendMessage" in statement["Action"]
    assert statement["Condition"] == {"ArnEquals": {"aws:SourceArn": rule["Arn"]}}


def test_provisioning_restores_a_changed_queue(stack: LocalStack) -> None:
    sqs = _client(stack, "sqs")
    url = sqs.get_queue_url(QueueName=DELIVERY_QUEUE.name)["QueueUrl"]
    sqs.set_queue_attributes(QueueUrl=url, Attributes={"VisibilityTimeout": "7"})
    assert f"sqs queue {DELIVERY_QUEUE.name}: updated" in provision(stack.aws_endpoint_url)
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["VisibilityTimeout"])
    assert attributes["Attributes"]["VisibilityTimeout"] == str(DELIVERY_QUEUE.visibility_timeout)


def test_stack_exports_the_delivery_queue_url_and_runs_pollers(stack: LocalStack) -> None:
    url = _client(stack, "sqs").get_queue_url(QueueName=DELIVERY_QUEUE.name)["QueueUrl"]
    assert os.environ["OMS_WEBHOOKS_DELIVERY_QUEUE_URL"] == url
    assert get_settings().delivery_queue_url == url
    pollers = {w.queue_url: w for w in stack.workers if isinstance(w, QueuePoller)}
    ingress = _client(stack, "sqs").get_queue_url(QueueName=INGRESS_QUEUE.name)["QueueUrl"]
    slow = _client(stack, "sqs").get_queue_url(QueueName=DELIVERY_SLOW_QUEUE.name)["QueueUrl"]
    assert get_settings().delivery_slow_queue_url == slow
    recovery = _client(stack, "sqs").get_queue_url(QueueName=RECOVERY_QUEUE.name)["QueueUrl"]
    assert set(pollers) == {url, ingress, slow, recovery}
    assert all(poller.running for poller in pollers.values())
    # Each poller's context names its own function (the router's, the dispatcher's).
    assert pollers[ingress].function_name == ROUTER_FUNCTION == "oms-webhooks-router"
    assert pollers[url].function_name == DISPATCHER_FUNCTION == "oms-webhooks-dispatcher"
    assert pollers[slow].function_name == DISPATCHER_FUNCTION
    assert pollers[recovery].function_name == RECOVERER_FUNCTION == "oms-webhooks-recoverer"


# -- EventBridge → SQS (moto delivers to SQS targets; checked here) ------------------


@pytest.fixture
def test_queue(stack: LocalStack) -> Iterator[tuple[str, str]]:
    """A new queue (URL, ARN) with a 1 s visibility, deleted afterwards."""
    sqs = _client(stack, "sqs")
    url = sqs.create_queue(
        QueueName=f"test-{uuid.uuid4().hex[:12]}", Attributes={"VisibilityTimeout": "1"}
    )["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    yield url, arn
    sqs.delete_queue(QueueUrl=url)


def _drain(sqs: Any, url: str, expected: int, quiet: float = 1.0) -> list[dict[str, Any]]:
    """Receive (and delete) until ``expected`` messages came and ``quiet`` s passed with none."""
    messages: list[dict[str, Any]] = []
    deadline = time.monotonic() + WAIT
    quiet_until = None
    while time.monotonic() < deadline:
        got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1)
        for message in got.get("Messages", []):
            messages.append(message)
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
        if len(messages) >= expected:
            quiet_until = quiet_until or time.monotonic() + quiet
            if time.monotonic() >= quiet_until:
                break
    return messages


def test_the_rule_sends_catalogue_events_to_sqs_and_filters_the_rest(
    stack: LocalStack, test_queue: tuple[str, str]
) -> None:
    url, arn = test_queue
    settings = get_settings()
    events, sqs = _client(stack, "events"), _client(stack, "sqs")
    target_id = f"test-{uuid.uuid4().hex[:12]}"
    # A second target on the provisioned rule: what it receives, the ingress queue receives.
    events.put_targets(
        Rule=RULE_NAME, EventBusName=settings.bus_name, Targets=[{"Id": target_id, "Arn": arn}]
    )
    marker = uuid.uuid4().hex
    try:

        def entry(source: str, detail_type: str) -> dict[str, str]:
            return {
                "EventBusName": settings.bus_name,
                "Source": source,
                "DetailType": detail_type,
                "Detail": json.dumps({"marker": marker, "name": "café"}),
            }

        response = events.put_events(
            Entries=[
                entry(settings.event_source, "stock_location.updated"),
                entry("not-the-oms", "stock_location.updated"),
                entry(settings.event_source, "stock_location.deleted"),
                entry(settings.event_source, "stock_location-updated"),  # alias: not on the bus
            ]
        )
        assert response["FailedEntryCount"] == 0
        messages = _drain(sqs, url, expected=1)
    finally:
        events.remove_targets(Rule=RULE_NAME, EventBusName=settings.bus_name, Ids=[target_id])
    assert len(messages) == 1, messages
    event = json.loads(messages[0]["Body"])
    assert event["id"] == response["Entries"][0]["EventId"]
    assert event["source"] == settings.event_source
    assert event["detail-type"] == "stock_location.updated"
    assert event["detail"] == {"marker": marker, "name": "café"}
    assert event["time"]


# -- the pollers ---------------------------------------------------------------------


class Recorder:
    """A test handler: records each batch; ``decide(records)`` gives the response."""

    def __init__(self, decide: Callable[[list[dict[str, Any]]], Any]) -> None:
        self.decide = decide
        self.batches: list[list[dict[str, Any]]] = []
        self.contexts: list[LambdaContext] = []
        self.lock = threading.Lock()

    def __call__(self, event: dict[str, Any], context: LambdaContext) -> Any:
        with self.lock:
            self.batches.append(event["Records"])
            self.contexts.append(context)
        return self.decide(event["Records"])

    def bodies(self) -> list[str]:
        with self.lock:
            return [r["body"] for batch in self.batches for r in batch]


@pytest.fixture
def run_poller(stack: LocalStack) -> Iterator[Callable[..., QueuePoller]]:
    """Start a QueuePoller on a queue of the test; stopped after the test."""
    started: list[QueuePoller] = []

    def start(url: str, handler: Any, **kwargs: Any) -> QueuePoller:
        kwargs.setdefault("function_name", "test-function")
        poller = QueuePoller(url, handler, sqs=sqs_client(stack.aws_endpoint_url), **kwargs)
        poller.start()
        started.append(poller)
        return poller

    yield start
    for poller in started:
        poller.stop(5.0)


def _send(sqs: Any, url: str, *bodies: str) -> None:
    sqs.send_message_batch(
        QueueUrl=url,
        Entries=[
            {
                "Id": str(n),
                "MessageBody": body,
                "MessageAttributes": {
                    "kind": {"DataType": "String", "StringValue": "test"},
                    "blob": {"DataType": "Binary", "BinaryValue": b"\x00\x01"},
                },
            }
            for n, body in enumerate(bodies)
        ],
    )


def _queue_is_empty(sqs: Any, url: str) -> bool:
    names = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=names)["Attributes"]
    return all(attributes[name] == "0" for name in names)


def test_partial_failure_deletes_only_the_successes(
    stack: LocalStack, test_queue: tuple[str, str], run_poller: Callable[..., QueuePoller]
) -> None:
    url, arn = test_queue
    sqs = _client(stack, "sqs")
    _send(sqs, url, "a", "b", "c")
    seen_b = threading.Event()

    def decide(records: list[dict[str, Any]]) -> Any:
        failures = []
        for record in records:
            if record["body"] == "b" and not seen_b.is_set():
                seen_b.set()
                failures.append({"itemIdentifier": record["messageId"]})
        return {"batchItemFailures": failures}

    handler = Recorder(decide)
    run_poller(url, handler, concurrency=1)
    _wait_for(lambda: handler.bodies().count("b") == 2)
    _wait_for(lambda: _queue_is_empty(sqs, url))
    assert sorted(handler.bodies()) == ["a", "b", "b", "c"]
    assert [r["body"] for r in handler.batches[0]] == ["a", "b", "c"]  # one batch
    retry = handler.batches[-1][0]
    assert retry["body"] == "b"
    assert retry["attributes"]["ApproximateReceiveCount"] == "2"
    first = handler.batches[0][0]
    assert first["eventSource"] == "aws:sqs"
    assert first["eventSourceARN"] == arn
    assert first["awsRegion"] == "us-east-1"
    assert first["receiptHandle"] and first["md5OfBody"] and first["messageId"]
    assert {"ApproximateReceiveCount", "SentTimestamp", "ApproximateFirstReceiveTimestamp"} <= set(
        first["attributes"]
    )
    assert first["messageAttributes"]["kind"]["stringValue"] == "test"
    assert first["messageAttributes"]["kind"]["dataType"] == "String"
    assert first["messageAttributes"]["blob"]["binaryValue"] == "AAE="
    assert handler.contexts[0].function_name == "test-function"
    assert handler.contexts[0].get_remaining_time_in_millis() > 0


def test_a_handler_exception_deletes_nothing(
    stack: LocalStack, test_queue: tuple[str, str], run_poller: Callable[..., QueuePoller]
) -> None:
    url, _ = test_queue
    sqs = _client(stack, "sqs")
    _send(sqs, url, "x", "y")
    calls: list[int] = []

    def decide(records: list[dict[str, Any]]) -> Any:
        calls.append(len(records))
        if len(calls) == 1:
            raise RuntimeError("boom")
        return None  # None: everything succeeded

    handler = Recorder(decide)
    run_poller(url, handler, concurrency=1)
    _wait_for(lambda: sorted(handler.bodies()) == ["x", "x", "y", "y"])
    _wait_for(lambda: _queue_is_empty(sqs, url))
    counts = {r["attributes"]["ApproximateReceiveCount"] for r in handler.batches[-1]}
    assert counts == {"2"}


def test_an_invalid_item_identifier_fails_the_whole_batch(
    stack: LocalStack, test_queue: tuple[str, str], run_poller: Callable[..., QueuePoller]
) -> None:
    url, _ = test_queue
    sqs = _client(stack, "sqs")
    _send(sqs, url, "p", "q")
    calls: list[int] = []

    def decide(records: list[dict[str, Any]]) -> Any:
        calls.append(1)
        if len(calls) == 1:
            return {"batchItemFailures": [{"itemIdentifier": "not-in-this-batch"}]}
        return {"batchItemFailures": []}

    handler = Recorder(decide)
    run_poller(url, handler, concurrency=1)
    _wait_for(lambda: sorted(handler.bodies()) == ["p", "p", "q", "q"])
    _wait_for(lambda: _queue_is_empty(sqs, url))


ALL = ("m1", "m2")


@pytest.mark.parametrize(
    ("response", "failed"),
    [
        pytest.param(None, (), id="none"),
        pytest.param({}, (), id="empty"),
        pytest.param({"batchItemFailures": None}, (), id="null-list"),
        pytest.param({"batchItemFailures": []}, (), id="empty-list"),
        pytest.param({"batchItemFailures": [{"itemIdentifier": "m2"}]}, ("m2",), id="one"),
        pytest.param({"batchItemFailures": [{"itemIdentifier": ""}]}, ALL, id="empty-id"),
        pytest.param({"batchItemFailures": [{"itemIdentifier": None}]}, ALL, id="null-id"),
        pytest.param({"batchItemFailures": [{"itemId": "m1"}]}, ALL, id="bad-key"),
        pytest.param({"batchItemFailures": [{"itemIdentifier": "m3"}]}, ALL, id="unknown-id"),
        pytest.param({"batchItemFailures": "m1"}, ALL, id="not-a-list"),
        pytest.param("not an object", ALL, id="not-an-object"),
    ],
)
def test_report_batch_item_failures_rules(response: Any, failed: tuple[str, ...]) -> None:
    assert failed_message_ids(response, list(ALL)) == set(failed)


def test_a_slow_batch_does_not_hold_back_another(
    stack: LocalStack, test_queue: tuple[str, str], run_poller: Callable[..., QueuePoller]
) -> None:
    url, _ = test_queue
    sqs = _client(stack, "sqs")
    release = threading.Event()
    fast_done = threading.Event()

    def decide(records: list[dict[str, Any]]) -> Any:
        if records[0]["body"] == "slow":
            release.wait(WAIT)
        else:
            fast_done.set()
        return None

    handler = Recorder(decide)
    run_poller(url, handler, concurrency=2, batch_size=1)
    _send(sqs, url, "slow")
    _wait_for(lambda: handler.bodies() == ["slow"])
    _send(sqs, url, "fast")
    try:
        assert fast_done.wait(5.0), "the second batch waited for the slow one"
    finally:
        release.set()
    _wait_for(lambda: _queue_is_empty(sqs, url))


def test_concurrent_functions_log_their_own_names(
    stack: LocalStack, test_queue: tuple[str, str], run_poller: Callable[..., QueuePoller]
) -> None:
    """Two functions at once in one process: each log line names its own function.

    Powertools keeps the Lambda context's keys in a formatter that every Logger
    of a service shares: the second invocation's keys would tag the first's lines.
    """
    router_url, _ = test_queue
    sqs = _client(stack, "sqs")
    dispatcher_url = sqs.create_queue(QueueName=f"test-{uuid.uuid4().hex[:12]}")["QueueUrl"]
    stream = io.StringIO()
    log = Logger(
        service=f"test-{uuid.uuid4().hex[:8]}", logger_handler=logging.StreamHandler(stream)
    )
    router_in, dispatcher_in, router_logged = (
        threading.Event(),
        threading.Event(),
        threading.Event(),
    )

    @log.inject_lambda_context(clear_state=True)
    def router(event: dict[str, Any], context: LambdaContext) -> None:
        router_in.set()
        dispatcher_in.wait(WAIT)  # the dispatcher's context is now the formatter's
        log.info("routing")
        router_logged.set()

    @log.inject_lambda_context(clear_state=True)
    def dispatcher(event: dict[str, Any], context: LambdaContext) -> None:
        router_in.wait(WAIT)
        dispatcher_in.set()
        router_logged.wait(WAIT)
        log.info("dispatching")

    try:
        run_poller(router_url, router, function_name=ROUTER_FUNCTION, concurrency=1)
        run_poller(dispatcher_url, dispatcher, function_name=DISPATCHER_FUNCTION, concurrency=1)
        _send(sqs, router_url, "r")
        _send(sqs, dispatcher_url, "d")
        _wait_for(lambda: stream.getvalue().count("\n") >= 2)
    finally:
        sqs.delete_queue(QueueUrl=dispatcher_url)
    lines = {line["message"]: line for line in map(json.loads, stream.getvalue().splitlines())}
    assert lines["routing"]["function_name"] == ROUTER_FUNCTION
    assert lines["routing"]["function_arn"].endswith(f":function:{ROUTER_FUNCTION}")
    assert lines["dispatching"]["function_name"] == DISPATCHER_FUNCTION
    assert lines["routing"]["function_request_id"] != lines["dispatching"]["function_request_id"]


def _in_flight(sqs: Any, url: str) -> int:
    attributes = sqs.get_queue_attributes(
        QueueUrl=url, AttributeNames=["ApproximateNumberOfMessagesNotVisible"]
    )["Attributes"]
    return int(attributes["ApproximateNumberOfMessagesNotVisible"])


def test_the_stack_router_poller_acknowledges_an_ingress_event(stack: LocalStack) -> None:
    """The real router through the stack's poller: the event is stored and its message deleted."""
    from oms_webhooks.routing.events_store import get_store

    settings = get_settings()
    sqs = _client(stack, "sqs")
    url = sqs.get_queue_url(QueueName=INGRESS_QUEUE.name)["QueueUrl"]
    before = _in_flight(sqs, url)  # failed messages of earlier tests wait out their visibility
    response = _client(stack, "events").put_events(
        Entries=[
            {
                "EventBusName": settings.bus_name,
                "Source": settings.event_source,
                "DetailType": "transfer.status.ready_to_shipment",
                "Detail": json.dumps({"marker": uuid.uuid4().hex}),
            }
        ]
    )
    assert response["FailedEntryCount"] == 0
    event_id = response["Entries"][0]["EventId"]
    _wait_for(lambda: get_store().get_payload(event_id) is not None, timeout=5.0)
    _wait_for(lambda: _in_flight(sqs, url) <= before, timeout=5.0)
    attributes = sqs.get_queue_attributes(
        QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"]
    )["Attributes"]
    assert attributes["ApproximateNumberOfMessages"] == "0"


# -- dlq redrive ---------------------------------------------------------------------


def test_cli_dlq_redrive_moves_messages_back(stack: LocalStack) -> None:
    from click.testing import CliRunner

    from oms_webhooks_local.cli import main

    sqs = _client(stack, "sqs")
    prefix = f"t{uuid.uuid4().hex[:10]}"
    queue = sqs.create_queue(QueueName=f"{prefix}-{DELIVERY_QUEUE.name}")["QueueUrl"]
    dlq = sqs.create_queue(QueueName=f"{prefix}-{DELIVERY_QUEUE.dlq_name}")["QueueUrl"]
    try:
        _send(sqs, dlq, "one", "two", "three")
        result = CliRunner().invoke(
            main,
            ["dlq", "redrive", "--prefix", prefix, "--endpoint-url", stack.aws_endpoint_url],
        )
        assert result.exit_code == 0, result.output
        assert "Moved 3 message(s)" in result.output
        moved = _drain(sqs, queue, expected=3, quiet=0.0)
        assert sorted(m["Body"] for m in moved) == ["one", "three", "two"]
        got = sqs.receive_message(QueueUrl=dlq, WaitTimeSeconds=1)
        assert not got.get("Messages")
    finally:
        sqs.delete_queue(QueueUrl=queue)
        sqs.delete_queue(QueueUrl=dlq)
