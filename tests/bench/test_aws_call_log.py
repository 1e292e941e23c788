"""The AWS call log (``oms_webhooks/aws_call_log.py``) and its cross-check with moto's recorder.

A child process (so that the patches never touch the test process) starts
moto's server on 127.0.0.1 with its request recorder, turns the call log on
through ``$OMS_WEBHOOKS_COUNT_AWS_CALLS`` and makes DynamoDB and SQS calls the
way the handlers do: inside a function scope, from ``loop.run_in_executor``
on a thread pool (the dispatcher's way, which the first cost benchmark lost)
and from a plain thread. The call log and moto's recording are then compared
with ``bench/_aws_calls.py``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO_ROOT / "bench"))

import _aws_calls as calls  # noqa: E402

TIMEOUT_SECONDS = 90

CHILD = textwrap.dedent(
    """
    import asyncio, json, sys, threading, time
    from concurrent.futures import ThreadPoolExecutor

    import boto3, requests
    from moto.server import ThreadedMotoServer

    from oms_webhooks import aws_call_log

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    endpoint = "http://127.0.0.1:%d" % server.get_host_and_port()[1]
    session = boto3.session.Session(
        region_name="us-east-1", aws_access_key_id="testing", aws_secret_access_key="testing"
    )
    ddb = session.client("dynamodb", endpoint_url=endpoint)
    sqs = session.client("sqs", endpoint_url=endpoint)
    ddb.create_table(
        TableName="t",
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    url = sqs.create_queue(QueueName="q")["QueueUrl"]
    requests.post(endpoint + "/moto-api/recorder/reset-recording", timeout=10)
    requests.post(endpoint + "/moto-api/recorder/start-recording", timeout=10)
    start = time.time()
    with aws_call_log.function_scope("oms-webhooks-dispatcher"):
        with ThreadPoolExecutor(max_workers=2, thread_name_prefix="delivery") as pool:

            async def main():
                loop = asyncio.get_running_loop()
                await loop.run_in_executor(
                    pool, lambda: ddb.put_item(TableName="t", Item={"pk": {"S": "a"}})
                )

            asyncio.run(main())
        thread = threading.Thread(
            target=lambda: ddb.get_item(TableName="t", Key={"pk": {"S": "a"}}), name="plain"
        )
        thread.start()
        thread.join()
    sqs.send_message(QueueUrl=url, MessageBody="x")
    end = time.time()
    requests.post(endpoint + "/moto-api/recorder/stop-recording", timeout=10)
    recording = requests.get(
        endpoint + "/moto-api/recorder/download-recording", timeout=10
    ).text
    server.stop()
    print(json.dumps({"start": start, "end": end, "recording": recording,
                      "installed": aws_call_log.installed()}))
    """
)


API_CHILD = textwrap.dedent(
    """
    import json, requests
    from oms_webhooks_local.stack import LocalStack

    with LocalStack(api_port=0, aws_port=0, worker_factories=[]) as stack:
        answer = requests.get(
            stack.api_url + "/whisperer/hooks/",
            headers={"Authorization": "Token " + stack.dev_token},
            timeout=30,
        )
    print(json.dumps({"status": answer.status_code}))
    """
)


def _run_child(tmp_path: Path, *, counting: bool, code: str = CHILD) -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MOTO_", "OMS_WEBHOOKS_"))}
    env["MOTO_RECORDER_FILEPATH"] = str(tmp_path / "recording.jsonl")
    if counting:
        env["OMS_WEBHOOKS_COUNT_AWS_CALLS"] = str(tmp_path)
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=TIMEOUT_SECONDS,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result: dict[str, Any] = json.loads(done.stdout.splitlines()[-1])
    return result


@pytest.fixture(scope="module")
def counted(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """One counted child run: its call log lines, moto's recording and the window."""
    directory = tmp_path_factory.mktemp("aws-calls")
    result = _run_child(directory, counting=True)
    lines = calls.read_call_log(str(directory))
    return {
        **result,
        "calls": [x for x in lines if x["kind"] == "call"],
        "invocations": [x for x in lines if x["kind"] == "invocation"],
        "recorded": calls.parse_recording(result["recording"]),
    }


def _window(counted: dict[str, Any]) -> list[dict[str, Any]]:
    return [x for x in counted["calls"] if x["end"] >= counted["start"]]


def test_calls_in_pool_and_plain_threads_are_attributed_to_the_function(
    counted: dict[str, Any],
) -> None:
    # GIVEN calls made inside a function scope from run_in_executor and a plain thread
    by_operation = {x["operation"]: x for x in counted["calls"]}
    # THEN both carry the function, made on their own threads
    put, get = by_operation["PutItem"], by_operation["GetItem"]
    assert put["function"] == "oms-webhooks-dispatcher"
    assert put["thread"].startswith("delivery")
    assert get["function"] == "oms-webhooks-dispatcher"
    assert get["thread"] == "plain"
    # AND calls outside the scope carry none
    assert by_operation["CreateTable"]["function"] is None
    assert by_operation["SendMessage"]["function"] is None
    # AND the scope wrote one invocation line
    assert [x["function"] for x in counted["invocations"]] == ["oms-webhooks-dispatcher"]


def test_dynamodb_calls_ask_for_the_consumed_capacity(counted: dict[str, Any]) -> None:
    by_operation = {x["operation"]: x for x in counted["calls"]}
    for operation in ("PutItem", "GetItem"):
        assert by_operation[operation]["params"]["ReturnConsumedCapacity"] == "INDEXES"
        assert "ConsumedCapacity" in by_operation[operation]["response"]


def test_the_call_log_matches_moto_request_by_request(counted: dict[str, Any]) -> None:
    # WHEN the window's calls are matched with moto's recording
    checked = calls.cross_check(
        _window(counted), counted["recorded"], counted["start"], counted["end"]
    )
    # THEN every request is on both sides
    expected = {"dynamodb:PutItem": 1, "dynamodb:GetItem": 1, "sqs:SendMessage": 1}
    assert checked["moto_recorder"] == expected
    assert checked["call_log"] == expected
    assert checked["requests_matched"] == 3


def test_a_request_moto_saw_that_no_process_logged_fails_the_check(
    counted: dict[str, Any],
) -> None:
    # GIVEN the log without the call made on the dispatcher's pool thread
    logged = [x for x in _window(counted) if x["operation"] != "PutItem"]
    # WHEN it is checked against moto's recording THEN the check fails, naming it
    with pytest.raises(calls.CountMismatch, match="dynamodb:PutItem"):
        calls.cross_check(logged, counted["recorded"], counted["start"], counted["end"])


def test_a_logged_call_moto_never_saw_fails_the_check(counted: dict[str, Any]) -> None:
    # GIVEN moto's recording without the SendMessage request
    recorded = [x for x in counted["recorded"] if x["operation"] != "SendMessage"]
    # WHEN the log is checked against it THEN the check fails, naming it
    with pytest.raises(calls.CountMismatch, match="sqs:SendMessage"):
        calls.cross_check(_window(counted), recorded, counted["start"], counted["end"])


def test_without_the_variable_nothing_is_patched_or_written(tmp_path: Path) -> None:
    # WHEN the same child runs without $OMS_WEBHOOKS_COUNT_AWS_CALLS
    result = _run_child(tmp_path, counting=False)
    # THEN the log is off and wrote nothing
    assert result["installed"] is False
    assert not list(tmp_path.glob("aws-calls-*.jsonl"))


@pytest.mark.parametrize(
    ("item", "size"),
    [
        ({"pk": {"S": "abc"}}, 2 + 3),
        ({"n": {"N": "123.450"}}, 1 + 3 + 1),  # 5 significant digits → 3 bytes, + 1
        ({"b": {"BOOL": True}, "z": {"NULL": True}}, 2 + 2),
        ({"m": {"M": {"k": {"S": "v"}}}}, 1 + 3 + (1 + 1 + 1)),
        ({"l": {"L": [{"S": "ab"}, {"N": "1"}]}}, 1 + 3 + (2 + 1) + (2 + 1)),
    ],
)
def test_item_size_follows_dynamodb_rules(item: dict[str, Any], size: int) -> None:
    assert calls.item_size(item) == size


def test_units_count_the_index_and_the_larger_size() -> None:
    # GIVEN a table whose index holds items with log_tenant
    units = calls.Units(
        {"d": calls.TableKeys(("pk",), [("log_tenant",)])},
        {'d|{"S": "x"}': 1500},  # the item's size read back after the window
    )
    put = {"pk": {"S": "x"}, "log_tenant": {"S": "t"}}
    # WHEN it is put (small) and updated (1.5 KB after)
    units.add({"operation": "PutItem", "params": {"TableName": "d", "Item": put}})
    units.add(
        {
            "operation": "UpdateItem",
            "params": {"TableName": "d", "Key": {"pk": {"S": "x"}}, "ConsistentRead": True},
        }
    )
    # THEN put = 1 + 1 (index), update = 2 + 2 (index), both at the larger size
    assert units.wru == 6
    assert units.wru_indexes == 3


@pytest.mark.slow
def test_the_local_api_calls_are_attributed_to_the_authorizer_and_the_api(
    tmp_path: Path,
) -> None:
    # GIVEN a local stack whose processes log their AWS calls
    # WHEN one API request goes through the local gateway
    result = _run_child(tmp_path, counting=True, code=API_CHILD)
    assert result["status"] == 200
    # THEN the token lookup is the authorizer's and the listing is the api's
    lines = calls.read_call_log(str(tmp_path))
    by_function: dict[str | None, set[str]] = {}
    for line in lines:
        if line["kind"] == "call":
            by_function.setdefault(line["function"], set()).add(line["operation"])
    assert "GetItem" in by_function["oms-webhooks-authorizer"]
    assert "Query" in by_function["oms-webhooks-api"]
    invoked = sorted(x["function"] for x in lines if x["kind"] == "invocation")
    assert invoked == ["oms-webhooks-api", "oms-webhooks-authorizer"]
