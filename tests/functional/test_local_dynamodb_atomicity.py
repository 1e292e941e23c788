"""The local stack's DynamoDB keeps DynamoDB's atomicity (issue 13, item 8).

moto's server runs requests in threads and its ``TransactWriteItems`` checks
conditions, writes item by item and, on a cancellation, restores a deep copy
of the table taken before other threads' writes. Against plain moto this
test's rounds ended with more successes than the limit, more items than
successes, or a ``RuntimeError`` from the deep copy (8 rounds of 30, on a
loaded 2-core machine); :mod:`oms_webhooks_local.moto_dynamodb` serialises
moto's DynamoDB requests. The per-tenant subscription limit relies on it
(``test_the_per_tenant_limit_holds_under_concurrent_creates``).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import boto3
import pytest

from oms_webhooks_local.stack import LocalStack

LIMIT = 10


@pytest.fixture
def table(stack: LocalStack) -> Iterator[tuple[Any, str]]:
    ddb = boto3.client(
        "dynamodb",
        endpoint_url=stack.aws_endpoint_url,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    name = f"atomicity-{uuid.uuid4().hex[:8]}"
    ddb.create_table(
        TableName=name,
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    for start in range(0, 200, 25):  # a table worth deep-copying: widens moto's race window
        fillers = [
            {"PutRequest": {"Item": {"pk": {"S": f"filler-{n}"}, "v": {"S": "x" * 100}}}}
            for n in range(start, start + 25)
        ]
        ddb.batch_write_item(RequestItems={name: fillers})
    yield ddb, name
    ddb.delete_table(TableName=name)


def test_concurrent_transactions_never_pass_a_counter_limit(table: tuple[Any, str]) -> None:
    ddb, name = table

    def create(key: str) -> bool:
        try:
            ddb.transact_write_items(
                TransactItems=[
                    {
                        "Put": {
                            "TableName": name,
                            "Item": {"pk": {"S": key}},
                            "ConditionExpression": "attribute_not_exists(pk)",
                        }
                    },
                    {
                        "Update": {
                            "TableName": name,
                            "Key": {"pk": {"S": f"counter-{key.split('/')[0]}"}},
                            "UpdateExpression": "ADD #t :one",
                            "ConditionExpression": "attribute_not_exists(#t) OR #t < :limit",
                            "ExpressionAttributeNames": {"#t": "total"},
                            "ExpressionAttributeValues": {
                                ":one": {"N": "1"},
                                ":limit": {"N": str(LIMIT)},
                            },
                        }
                    },
                ]
            )
        except ddb.exceptions.TransactionCanceledException:
            return False
        return True

    for round_ in range(5):
        with ThreadPoolExecutor(8) as pool:
            succeeded = sum(pool.map(create, [f"{round_}/{n}" for n in range(3 * LIMIT)]))
        items = [
            i["pk"]["S"]
            for i in ddb.scan(TableName=name)["Items"]
            if i["pk"]["S"].startswith(f"{round_}/")
        ]
        counter = ddb.get_item(TableName=name, Key={"pk": {"S": f"counter-{round_}"}})
        assert (succeeded, len(items), counter["Item"]["total"]["N"]) == (LIMIT, LIMIT, str(LIMIT))
