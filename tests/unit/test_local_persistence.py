"""The local stack's journal of moto's tables and KMS keys (oms_webhooks_local.persistence).

moto's in-process backends (``mock_aws``) stand in for the AWS server's
process: :class:`LocalState` works on the backends of the process it runs in.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from oms_webhooks.resources import INGRESS_QUEUE
from oms_webhooks_local.errors import StateDirInUse
from oms_webhooks_local.persistence import LocalState

REGION = "us-east-1"


def _create_table(dynamodb: Any) -> None:
    dynamodb.create_table(
        TableName="things",
        AttributeDefinitions=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "sk", "AttributeType": "S"},
        ],
        KeySchema=[
            {"AttributeName": "pk", "KeyType": "HASH"},
            {"AttributeName": "sk", "KeyType": "RANGE"},
        ],
        BillingMode="PAY_PER_REQUEST",
    )


@pytest.fixture
def dynamodb() -> Iterator[Any]:
    with mock_aws():
        client = boto3.client("dynamodb", region_name=REGION)
        _create_table(client)
        yield client


def _empty(dynamodb: Any) -> None:
    """Start the table over, as a restarted moto has it."""
    dynamodb.delete_table(TableName="things")
    _create_table(dynamodb)


def _item(pk: str, **extra: Any) -> dict[str, Any]:
    return {"pk": {"S": pk}, "sk": {"S": "x"}, **extra}


def _lines(state: LocalState) -> list[dict[str, Any]]:
    return [json.loads(line) for line in state.tables_path.read_text().splitlines()]


def test_snapshots_write_only_what_changed_and_a_restart_replays_them(
    dynamodb: Any, tmp_path: Path
) -> None:
    # GIVEN a state that tracks writes, and three items
    state = LocalState(tmp_path)
    state.load_tables()
    state.start()
    try:
        for pk in ("a", "b", "c"):
            dynamodb.put_item(TableName="things", Item=_item(pk, n={"N": "1"}))
        assert state.snapshot() == 3
        # WHEN one is updated, one deleted, one left alone
        dynamodb.update_item(
            TableName="things",
            Key={"pk": {"S": "a"}, "sk": {"S": "x"}},
            UpdateExpression="SET n = :n, m = :m",
            ExpressionAttributeValues={":n": {"N": "2"}, ":m": {"M": {"k": {"L": [{"S": "v"}]}}}},
        )
        dynamodb.delete_item(TableName="things", Key={"pk": {"S": "b"}, "sk": {"S": "x"}})
        # THEN the next snapshot holds just those two
        assert state.snapshot() == 2
        last = _lines(state)[-1]["tables"]["things"]
        assert [i["pk"] for i in last["put"]] == [{"S": "a"}]
        assert last["delete"] == [{"pk": {"S": "b"}, "sk": {"S": "x"}}]
        assert state.snapshot() == 0  # nothing changed since
    finally:
        state.stop()
        state.release()  # (as its server's exit does)

    # AND replaying the journal into an empty table gives the same items
    _empty(dynamodb)
    assert LocalState(tmp_path).load_tables() == 2
    items = {i["pk"]["S"]: i for i in dynamodb.scan(TableName="things")["Items"]}
    assert sorted(items) == ["a", "c"]
    assert items["a"]["n"] == {"N": "2"}
    assert items["a"]["m"] == {"M": {"k": {"L": [{"S": "v"}]}}}


def test_a_snapshot_cut_short_by_a_crash_is_ignored(dynamodb: Any, tmp_path: Path) -> None:
    state = LocalState(tmp_path)
    state.load_tables()
    state.start()
    try:
        dynamodb.put_item(TableName="things", Item=_item("kept"))
        state.snapshot()
    finally:
        state.stop()
        state.release()  # (as its server's exit does)
    with state.tables_path.open("ab") as handle:  # a crash in the middle of the next line
        handle.write(b'{"v":1,"full":false,"tables":{"things":{"put":[{"pk":{"S":"lost"')
    _empty(dynamodb)
    assert LocalState(tmp_path).load_tables() == 1
    assert [i["pk"]["S"] for i in dynamodb.scan(TableName="things")["Items"]] == ["kept"]
    # the load compacted the journal into one whole line
    assert len(state.tables_path.read_text().splitlines()) == 1


def test_kms_keys_come_back_with_their_id_and_material(tmp_path: Path) -> None:
    context = {"purpose": "test"}
    with mock_aws():
        kms = boto3.client("kms", region_name=REGION)
        key_id = kms.create_key(Description="seals")["KeyMetadata"]["KeyId"]
        kms.create_alias(AliasName="alias/seals", TargetKeyId=key_id)
        blob = kms.encrypt(KeyId="alias/seals", Plaintext=b"s3cret", EncryptionContext=context)[
            "CiphertextBlob"
        ]
        assert LocalState(tmp_path).save_keys() == 1
    assert (tmp_path / "kms.json").stat().st_mode & 0o777 == 0o600
    with mock_aws():
        kms = boto3.client("kms", region_name=REGION)
        assert LocalState(tmp_path).restore_keys() == 1
        plain = kms.decrypt(CiphertextBlob=blob, EncryptionContext=context)
        assert plain["Plaintext"] == b"s3cret" and plain["KeyId"].endswith(key_id)
        aliases = {a["AliasName"]: a.get("TargetKeyId") for a in kms.list_aliases()["Aliases"]}
        assert aliases["alias/seals"] == key_id


def test_fresh_starts_empty(dynamodb: Any, tmp_path: Path) -> None:
    state = LocalState(tmp_path)
    state.start()
    try:
        dynamodb.put_item(TableName="things", Item=_item("old"))
    finally:
        state.stop()
        state.release()  # (as its server's exit does)
    _empty(dynamodb)
    assert LocalState(tmp_path, fresh=True).load_tables() == 0
    assert dynamodb.scan(TableName="things")["Items"] == []


#: The kept queue of the ingress test (see there).
QUEUE = f"{INGRESS_QUEUE.name}-journal-test"


def test_events_waiting_in_the_ingress_queue_are_journalled_and_queued_again(
    dynamodb: Any, tmp_path: Path
) -> None:
    # A queue of its own: mock_aws is process-wide, and a local stack of another test in
    # this worker polls the real ingress queue's name (it took one of these messages).
    sqs = boto3.client("sqs", region_name=REGION)
    url = sqs.create_queue(QueueName=QUEUE)["QueueUrl"]
    state = LocalState(tmp_path, kept_queues=(QUEUE,))
    state.load_tables()
    state.start()
    try:
        # GIVEN three events accepted into the ingress queue, one routed (deleted)
        # and one received but not yet deleted (in flight)
        for n in range(3):
            sqs.send_message(
                QueueUrl=url,
                MessageBody=json.dumps({"event": n}),
                MessageAttributes={"kind": {"DataType": "String", "StringValue": f"k{n}"}},
            )
        assert state.snapshot() == 3
        received = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=2, VisibilityTimeout=60)
        routed, in_flight = received["Messages"]
        sqs.delete_message(QueueUrl=url, ReceiptHandle=routed["ReceiptHandle"])
        assert state.snapshot() == 1  # the deletion
        assert state.snapshot() == 0  # nothing changed since
    finally:
        state._stopping.set()  # a crash: no clean stop, no drain...
        state.release()  # ...and the kernel drops a dead process's lock
    # WHEN moto restarts empty and the journal is loaded
    sqs.delete_queue(QueueUrl=url)
    url = sqs.create_queue(QueueName=QUEUE)["QueueUrl"]
    restarted = LocalState(tmp_path, kept_queues=(QUEUE,))
    restarted.load_tables()
    # THEN the two events not routed are in the queue again, with their attributes
    assert restarted.requeued == 2
    again = sqs.receive_message(
        QueueUrl=url, MaxNumberOfMessages=10, MessageAttributeNames=["All"]
    )["Messages"]
    sent = {json.dumps({"event": n}) for n in range(3)}
    assert sorted(m["Body"] for m in again) == sorted(sent - {routed["Body"]})
    assert in_flight["Body"] in {m["Body"] for m in again}
    for message in again:
        kind = message["MessageAttributes"]["kind"]["StringValue"]
        assert kind == f"k{json.loads(message['Body'])['event']}"
    # AND the compacted journal holds exactly them (a second restart finds the same two)
    (line,) = _lines(restarted)
    assert line["full"] and len(line["queues"][QUEUE]["put"]) == 2


def test_one_state_directory_serves_one_stack_at_a_time(tmp_path: Path) -> None:
    # GIVEN a stack's state in a directory, with a journal
    first = LocalState(tmp_path)
    first.tables_path.write_text("{}\n", encoding="utf-8")
    # WHEN a second stack, even one asked to start fresh, takes the same directory
    holder = rf"in use by another local stack \(pid {os.getpid()}\)"
    with pytest.raises(StateDirInUse, match=holder):
        LocalState(tmp_path, fresh=True)
    # THEN it is refused, naming the holder, and the first one's journal is untouched
    assert first.tables_path.read_text(encoding="utf-8") == "{}\n"
    # AND once the first lets go, the directory is free again
    first.release()
    LocalState(tmp_path).release()
