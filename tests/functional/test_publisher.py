"""The publisher against moto's real EventBridge, with failures injected only where AWS has them.

Each test publishes to a bus of its own (no rule), so nothing reaches the
ingress queue or other tests. ``FlakyEvents`` wraps the real client: it
answers some entries of a call with a ``FailedEntryCount`` response as
EventBridge does (HTTP 200, per-entry ``ErrorCode``) and sends the rest for
real.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pytest
from click.testing import CliRunner

from oms_webhooks.settings import get_settings
from oms_webhooks_local.cli import main
from oms_webhooks_local.publisher import (
    MAX_BYTES,
    EventTooLarge,
    OmsEventEntry,
    PublishFailed,
    entry_size,
    publish_event,
    publish_events,
)
from oms_webhooks_local.stack import LocalStack


class FlakyEvents:
    """The real EventBridge client, but ``fail(call_number, entry)`` entries fail with a code.

    Attributes:
        calls: the Entries of every put_events call, in order.
    """

    def __init__(self, real: Any, fail: Callable[[int, dict[str, Any]], str | None]) -> None:
        self.real = real
        self.fail = fail
        self.calls: list[list[dict[str, Any]]] = []

    def put_events(self, *, Entries: list[dict[str, Any]]) -> dict[str, Any]:
        number = len(self.calls)
        self.calls.append(list(Entries))
        codes = [self.fail(number, entry) for entry in Entries]
        send = [entry for entry, code in zip(Entries, codes, strict=True) if code is None]
        sent = iter(self.real.put_events(Entries=send)["Entries"] if send else [])
        results: list[dict[str, Any]] = []
        for code in codes:
            if code is None:
                results.append(next(sent))
            else:
                results.append({"ErrorCode": code, "ErrorMessage": f"injected {code}"})
        failed = sum(1 for r in results if "ErrorCode" in r)
        return {"FailedEntryCount": failed, "Entries": results}


@pytest.fixture
def bus(stack: LocalStack) -> Iterator[str]:
    """A bus of this test's own (no rule: events go nowhere)."""
    events = boto3.client("events", endpoint_url=stack.aws_endpoint_url, region_name="us-east-1")
    name = f"test-bus-{uuid.uuid4().hex[:12]}"
    events.create_event_bus(Name=name)
    yield name
    events.delete_event_bus(Name=name)


@pytest.fixture
def real_events(stack: LocalStack) -> Any:
    return boto3.client("events", endpoint_url=stack.aws_endpoint_url, region_name="us-east-1")


def _events(count: int, size: int = 10) -> list[OmsEventEntry]:
    return [OmsEventEntry("package.created", {"n": n, "pad": "x" * size}) for n in range(count)]


def _no_sleep(seconds: float) -> None:
    pass


def test_25_events_go_in_3_calls_of_at_most_10(real_events: Any, bus: str) -> None:
    client = FlakyEvents(real_events, lambda call, entry: None)
    ids = publish_events(_events(25), client=client, bus_name=bus)
    assert [len(call) for call in client.calls] == [10, 10, 5]
    assert len(ids) == len(set(ids)) == 25
    sent = [json.loads(entry["Detail"])["n"] for call in client.calls for entry in call]
    assert sent == list(range(25))
    assert all(entry["EventBusName"] == bus for call in client.calls for entry in call)


def test_calls_are_split_by_total_size(real_events: Any, bus: str) -> None:
    client = FlakyEvents(real_events, lambda call, entry: None)
    ids = publish_events(_events(5, size=100 * 1024), client=client, bus_name=bus)
    assert len(ids) == 5
    assert [len(call) for call in client.calls] == [2, 2, 1]
    for call in client.calls:
        assert sum(entry_size(entry) for entry in call) <= MAX_BYTES


def test_entries_reported_failed_are_retried(real_events: Any, bus: str) -> None:
    def fail(call: int, entry: dict[str, Any]) -> str | None:
        n = json.loads(entry["Detail"])["n"]
        return "ThrottlingException" if call == 0 and n in (1, 3) else None

    client = FlakyEvents(real_events, fail)
    ids = publish_events(_events(5), client=client, bus_name=bus, sleep=_no_sleep)
    assert len(ids) == len(set(ids)) == 5
    assert [[json.loads(e["Detail"])["n"] for e in call] for call in client.calls] == [
        [0, 1, 2, 3, 4],
        [1, 3],
    ]


def test_entries_still_failing_are_raised_with_their_codes(real_events: Any, bus: str) -> None:
    def fail(call: int, entry: dict[str, Any]) -> str | None:
        n = json.loads(entry["Detail"])["n"]
        return {2: "InternalFailure", 4: "MalformedDetail"}.get(n)

    client = FlakyEvents(real_events, fail)
    with pytest.raises(PublishFailed) as caught:
        publish_events(_events(5), client=client, bus_name=bus, max_attempts=3, sleep=_no_sleep)
    failed = caught.value.failed
    assert [(f.index, f.error_code) for f in failed] == [
        (2, "InternalFailure"),
        (4, "MalformedDetail"),
    ]
    assert json.loads(failed[0].entry["Detail"])["n"] == 2
    ids = caught.value.event_ids
    assert [i is None for i in ids] == [False, False, True, False, True]
    # InternalFailure is retried up to 3 calls in all; MalformedDetail is not retried.
    assert [len(call) for call in client.calls] == [5, 1, 1]


def test_over_256_kb_is_refused_before_any_call(real_events: Any, bus: str) -> None:
    client = FlakyEvents(real_events, lambda call, entry: None)
    with pytest.raises(EventTooLarge):
        publish_events(
            [*_events(2), OmsEventEntry("package.created", {"x": "y" * MAX_BYTES})],
            client=client,
            bus_name=bus,
        )
    assert client.calls == []


def test_publish_event_uses_the_environment_endpoint(stack: LocalStack, bus: str) -> None:
    event_id = publish_event("stock_location-updated", {"id": 1}, bus_name=bus)
    assert uuid.UUID(event_id)


def test_cli_publish_prints_the_event_id(stack: LocalStack, bus: str, tmp_path: Any) -> None:
    path = tmp_path / "event.json"
    path.write_text(json.dumps({"name": "café"}), encoding="utf-8")
    runner = CliRunner()
    endpoint = ["--endpoint-url", stack.aws_endpoint_url, "--bus", bus]
    result = runner.invoke(main, ["publish", "package.created", "--file", str(path), *endpoint])
    assert result.exit_code == 0, result.output
    assert uuid.UUID(result.output.strip())
    result = runner.invoke(main, ["publish", "package-created", "--data", '{"a": 1}', *endpoint])
    assert result.exit_code == 0, result.output
    result = runner.invoke(main, ["publish", "package.nope", "--data", "{}", *endpoint])
    assert result.exit_code == 2
    assert "valid types" in result.output
    result = runner.invoke(main, ["publish", "package.created", "--data", "[1]", *endpoint])
    assert result.exit_code == 2
    result = runner.invoke(main, ["publish", "package.created", "--data", "{", *endpoint])
    assert result.exit_code == 2
    result = runner.invoke(main, ["publish", "package.created", *endpoint])
    assert result.exit_code == 2


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ('{"x": NaN}', "NaN and Infinity are not JSON numbers"),
        ('{"x": 1e400}', "NaN and Infinity are not JSON numbers"),
        ('{"x": -Infinity}', "NaN and Infinity are not JSON numbers"),
        ('"str"', "Detail must be a JSON object, not a JSON string"),
        ("[1]", "Detail must be a JSON object, not a JSON array"),
        ("{", "Detail is not JSON: "),
    ],
)
def test_cli_publish_refuses_a_detail_that_is_not_a_json_object(
    stack: LocalStack, bus: str, data: str, message: str
) -> None:
    endpoint = ["--endpoint-url", stack.aws_endpoint_url, "--bus", bus]
    result = CliRunner().invoke(main, ["publish", "package.created", "--data", data, *endpoint])
    assert result.exit_code == 2, result.output
    assert message in result.stderr
    assert "Traceback" not in result.output


def test_cli_publish_warns_when_the_source_is_not_the_routed_one(
    stack: LocalStack, bus: str
) -> None:
    endpoint = ["--endpoint-url", stack.aws_endpoint_url, "--bus", bus]
    configured = get_settings().event_source
    args = ["publish", "package.created", "--data", "{}", *endpoint]
    result = CliRunner().invoke(main, [*args, "--source", "other"])
    assert result.exit_code == 0, result.output
    assert uuid.UUID(result.stdout.strip())  # published all the same
    assert "Warning" in result.stderr
    assert "'other'" in result.stderr and repr(configured) in result.stderr
    for same in ([], ["--source", configured]):
        result = CliRunner().invoke(main, [*args, *same])
        assert result.exit_code == 0, result.output
        assert uuid.UUID(result.stdout.strip())
        assert result.stderr == ""
