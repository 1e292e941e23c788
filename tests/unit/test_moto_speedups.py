"""The local AWS server's patches to moto give moto's own answers (local.moto_speedups)."""

from __future__ import annotations

import boto3
from moto import mock_aws

from oms_webhooks_local import moto_speedups

COUNTS = [
    "ApproximateNumberOfMessages",
    "ApproximateNumberOfMessagesDelayed",
    "ApproximateNumberOfMessagesNotVisible",
]


def test_queue_counts_and_receives_are_moto_s() -> None:
    moto_speedups.install()
    with mock_aws():
        sqs = boto3.client("sqs", region_name="us-east-1")
        url = sqs.create_queue(QueueName="q", Attributes={"MessageRetentionPeriod": "600"})[
            "QueueUrl"
        ]
        # GIVEN three messages: one delayed, two visible
        sqs.send_message(QueueUrl=url, MessageBody="later", DelaySeconds=60)
        sqs.send_message(QueueUrl=url, MessageBody="a")
        sqs.send_message(QueueUrl=url, MessageBody="b")
        counts = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=COUNTS)["Attributes"]
        assert counts == dict(zip(COUNTS, ["2", "1", "0"], strict=True))
        # WHEN one is received (in flight)
        received = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=1, VisibilityTimeout=30)
        assert [m["Body"] for m in received["Messages"]] == ["a"]
        # THEN the counts move, asked by name or with All
        counts = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=COUNTS)["Attributes"]
        assert counts == dict(zip(COUNTS, ["1", "1", "1"], strict=True))
        everything = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
        assert {k: everything[k] for k in COUNTS} == counts
        assert everything["MessageRetentionPeriod"] == "600"
        # AND the next receive gets the other visible one, never the delayed one
        again = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, VisibilityTimeout=30)
        assert [m["Body"] for m in again["Messages"]] == ["b"]


def test_dispatch_caches_give_moto_s_answers() -> None:
    import moto.core.utils as utils
    from moto.dynamodb.responses import DynamoHandler
    from moto.sqs.responses import SQSResponse

    moto_speedups.install()
    original_names = utils.method_names_from_class.__wrapped__  # type: ignore[attr-defined]
    original_camel = utils.camelcase_to_underscores.__wrapped__  # type: ignore[attr-defined]
    for clazz in (DynamoHandler, SQSResponse):
        # the same names, asked twice (the second from the cache), as a new list each time
        first = utils.method_names_from_class(clazz)
        assert first == original_names(clazz) == utils.method_names_from_class(clazz)
        first.append("mutated")
        assert "mutated" not in utils.method_names_from_class(clazz)
    for name in (
        "GetItem",
        "SendMessageBatch",
        "ApproximateNumberOfMessages",
        "",
        "theNewAttribute",
    ):
        assert utils.camelcase_to_underscores(name) == original_camel(name)


def test_send_message_still_deduplicates_by_content_and_counts_stay_right() -> None:
    moto_speedups.install()
    with mock_aws():
        sqs = boto3.client("sqs", region_name="us-east-1")
        fifo = sqs.create_queue(
            QueueName="q.fifo",
            Attributes={"FifoQueue": "true", "ContentBasedDeduplication": "true"},
        )["QueueUrl"]
        # GIVEN a FIFO queue deduplicating by content: the same body twice is kept once
        for _ in range(2):
            sqs.send_message(QueueUrl=fifo, MessageBody="same", MessageGroupId="g")
        sqs.send_message(QueueUrl=fifo, MessageBody="other", MessageGroupId="g")
        counts = sqs.get_queue_attributes(QueueUrl=fifo, AttributeNames=COUNTS)["Attributes"]
        assert counts == dict(zip(COUNTS, ["2", "0", "0"], strict=True))
        # AND a standard queue counts every message sent
        plain = sqs.create_queue(QueueName="plain")["QueueUrl"]
        for n in range(5):
            sqs.send_message(QueueUrl=plain, MessageBody=str(n), DelaySeconds=60 if n else 0)
        counts = sqs.get_queue_attributes(QueueUrl=plain, AttributeNames=COUNTS)["Attributes"]
        assert counts == dict(zip(COUNTS, ["1", "4", "0"], strict=True))
