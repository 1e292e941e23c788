"""The local AWS server's patches to moto give moto's own answers (local.moto_speedups)."""

from __future__ import annotations

import boto3
from moto import mock_aws

from oms_webhooks.local import moto_speedups

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
