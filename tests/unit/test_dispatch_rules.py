"""Pure rules of the dispatcher: message parsing, Retry-After, the next countdown."""

from datetime import UTC, datetime
from email.utils import format_datetime

import pytest

from oms_webhooks.delivery.message import MalformedMessage, decode
from oms_webhooks.delivery.request.sender import AttemptResult
from oms_webhooks.delivery.retry.delay import MAX_RETRY_AFTER_SECONDS, next_delay
from oms_webhooks.delivery.retry.retry_after import parse_retry_after
from oms_webhooks.storage.models import SubscriptionModel

NOW = 1_800_000_000.0


def _result(status: int, retry_after: str | None = None) -> AttemptResult:
    return AttemptResult(
        at=datetime.now(UTC),
        status_code=status,
        error=None,
        response_time_ms=5,
        retry_after=retry_after,
    )


def _subscription(config: dict[str, object]) -> SubscriptionModel:
    return SubscriptionModel("t", "s", retry_countdown_config=config, max_retries=5)


def test_parse_message_returns_the_uuid() -> None:
    assert decode('{"delivery": "' + "a" * 32 + '"}').delivery_uuid == "a" * 32


@pytest.mark.parametrize(
    "body",
    [
        "",
        "nope",
        "[]",
        '{"delivery": 1}',
        '{"delivery": "XYZ"}',
        '{"delivery": "' + "A" * 32 + '"}',
    ],
)
def test_malformed_messages_are_refused(body: str) -> None:
    with pytest.raises(MalformedMessage):
        decode(body)


def test_retry_after_seconds_and_http_date() -> None:
    assert parse_retry_after("120", now=NOW) == 120
    when = datetime.fromtimestamp(NOW + 90, tz=UTC)
    assert parse_retry_after(format_datetime(when, usegmt=True), now=NOW) == pytest.approx(90)
    assert parse_retry_after("soon", now=NOW) is None
    assert parse_retry_after(None, now=NOW) is None


def test_countdown_follows_the_policy() -> None:
    sub = _subscription({"choice": "exponential", "kwargs": {"base": 2, "factor": 1}})
    assert [next_delay(sub, n, _result(500), now=NOW) for n in range(4)] == [1, 2, 4, 8]


def test_retry_after_raises_the_countdown_within_the_policy_limit() -> None:
    sub = _subscription({"choice": "fixed", "kwargs": {"seconds": 10}})
    assert next_delay(sub, 0, _result(429, "60"), now=NOW) == 60
    limited = _subscription({"choice": "linear", "kwargs": {"base": 10, "limit": 30}})
    assert next_delay(limited, 1, _result(503, "3600"), now=NOW) == 30


def test_retry_after_never_beyond_one_hop_without_a_limit() -> None:
    sub = _subscription({"choice": "fixed", "kwargs": {"seconds": 10}})
    assert next_delay(sub, 0, _result(429, "99999999"), now=NOW) == MAX_RETRY_AFTER_SECONDS


def test_retry_after_shorter_than_the_countdown_changes_nothing() -> None:
    sub = _subscription({"choice": "fixed", "kwargs": {"seconds": 100}})
    assert next_delay(sub, 0, _result(503, "5"), now=NOW) == 100
