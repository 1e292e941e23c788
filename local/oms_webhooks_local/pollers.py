"""SQS pollers that feed Lambda handlers as Lambda's SQS event source mapping does.

A :class:`QueuePoller` is one queue's event source mapping: ``concurrency``
threads (default 4, as Lambda runs several invocations at once), each looping

1. ``ReceiveMessage`` with long polling (``WaitTimeSeconds`` = 1, SQS's
   smallest non-zero wait, so that a stop or a message becoming visible again
   is noticed within about a second), up to ``batch_size`` messages, all
   system and message attributes;
2. the handler is invoked with the event Lambda builds for SQS (below) and a
   new :class:`~oms_webhooks_local.lambda_context.FakeLambdaContext` naming the
   poller's own function (inside :func:`~oms_webhooks_local.lambda_context.invocation`,
   so that its log lines carry that name, not another function's);
3. ``DeleteMessageBatch`` for the records *not* reported in the response's
   ``batchItemFailures`` (``ReportBatchItemFailures``).

The rules of the response (AWS Lambda developer guide, "Handling errors for an
SQS event source", ReportBatchItemFailures):

* ``None``, ``{}``, or a ``batchItemFailures`` that is null or empty → every
  record succeeded, all are deleted;
* a handler exception → the whole batch failed, nothing is deleted;
* a response that is not an object, or any failure whose ``itemIdentifier``
  is missing, empty, not a string or not a message id of the batch → the
  whole batch failed, nothing is deleted (Lambda treats it so).

Failed records are not touched: they reappear after their visibility timeout
(the queue's, or what the handler set with ``ChangeMessageVisibility``), and
after ``maxReceiveCount`` receives SQS moves them to the DLQ. Errors (handler,
SQS, network) are logged and never end a poller thread.

The event, per record (AWS Lambda developer guide, "Using Lambda with Amazon
SQS", example event)::

    {"messageId", "receiptHandle", "body",
     "attributes": {"ApproximateReceiveCount", "SentTimestamp", "SenderId",
                    "ApproximateFirstReceiveTimestamp", ...},
     "messageAttributes": {name: {"stringValue", "binaryValue", "stringListValues",
                                  "binaryListValues", "dataType"}},
     "md5OfBody", ["md5OfMessageAttributes"], "eventSource": "aws:sqs",
     "eventSourceARN", "awsRegion"}

The local stack's pollers (which queue feeds which handler) are in
:mod:`oms_webhooks_local.lanes`.
"""

from __future__ import annotations

import base64
import importlib
import logging
import threading
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import boto3
from botocore.config import Config

from oms_webhooks.names import SERVICE_NAME
from oms_webhooks_local.lambda_context import FakeLambdaContext, Handler, invocation
from oms_webhooks_local.provision import LOCAL_ACCESS_KEY_ID, LOCAL_REGION, LOCAL_SECRET_ACCESS_KEY

if TYPE_CHECKING:
    pass

logger = logging.getLogger(__name__)

#: Pollers per queue unless ``$OMS_WEBHOOKS_LOCAL_POLLERS`` says otherwise.
DEFAULT_CONCURRENCY = 4
#: ReceiveMessage long-polling wait, in seconds (SQS takes whole seconds, 0-20).
RECEIVE_WAIT_SECONDS = 1
#: Pause after an error before the next receive, in seconds (no hot loop).
ERROR_PAUSE_SECONDS = 0.5
#: SQS's DeleteMessageBatch takes at most 10 entries.
_DELETE_BATCH = 10


def resolve_handler(handler: Handler | str) -> Handler:
    """``handler`` itself, or the callable named by ``"package.module:attribute"``."""
    if not isinstance(handler, str):
        return handler
    module_name, _, attribute = handler.partition(":")
    found: Handler = getattr(importlib.import_module(module_name), attribute)
    return found


def sqs_client(endpoint_url: str | None, *, pool_size: int = 10) -> Any:
    """An SQS client for ``endpoint_url`` as moto's default account (``us-east-1``).

    Its read timeout leaves room for the long-polling wait; ``pool_size``
    should cover the threads that share it.
    """
    return boto3.session.Session().client(
        "sqs",
        endpoint_url=endpoint_url,
        region_name=LOCAL_REGION,
        aws_access_key_id=LOCAL_ACCESS_KEY_ID,
        aws_secret_access_key=LOCAL_SECRET_ACCESS_KEY,
        config=Config(
            retries={"mode": "standard", "max_attempts": 3},
            connect_timeout=2,
            read_timeout=RECEIVE_WAIT_SECONDS + 10,
            max_pool_connections=pool_size,
        ),
    )


def _message_attribute(value: Mapping[str, Any]) -> dict[str, Any]:
    """boto3's ``MessageAttributes`` value → Lambda's camelCase form (binary as base64)."""

    def b64(data: bytes) -> str:
        return base64.b64encode(data).decode("ascii")

    converted: dict[str, Any] = {
        "stringListValues": list(value.get("StringListValues", [])),
        "binaryListValues": [b64(v) for v in value.get("BinaryListValues", [])],
        "dataType": value.get("DataType", "String"),
    }
    if "StringValue" in value:
        converted["stringValue"] = value["StringValue"]
    if "BinaryValue" in value:
        converted["binaryValue"] = b64(value["BinaryValue"])
    return converted


def lambda_sqs_record(message: Mapping[str, Any], queue_arn: str, region: str) -> dict[str, Any]:
    """One ``ReceiveMessage`` message as a record of Lambda's SQS event (module docstring)."""
    record: dict[str, Any] = {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message.get("Body", ""),
        "attributes": dict(message.get("Attributes", {})),
        "messageAttributes": {
            name: _message_attribute(value)
            for name, value in message.get("MessageAttributes", {}).items()
        },
        "md5OfBody": message.get("MD5OfBody", ""),
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": region,
    }
    if "MD5OfMessageAttributes" in message:
        record["md5OfMessageAttributes"] = message["MD5OfMessageAttributes"]
    return record


def failed_message_ids(response: Any, message_ids: Sequence[str]) -> set[str]:
    """The message ids to keep (not delete) given a handler's ``response``.

    Implements ReportBatchItemFailures (module docstring): an empty or null
    response is full success (empty set); an invalid one fails the whole batch
    (every id).
    """
    everything = set(message_ids)
    if response is None:
        return set()
    if not isinstance(response, Mapping):
        logger.error("handler response is not an object: the whole batch failed")
        return everything
    failures = response.get("batchItemFailures")
    if failures is None:
        return set()
    if not isinstance(failures, list):
        logger.error("batchItemFailures is not a list: the whole batch failed")
        return everything
    failed: set[str] = set()
    for failure in failures:
        identifier = failure.get("itemIdentifier") if isinstance(failure, Mapping) else None
        if not isinstance(identifier, str) or identifier not in everything:
            logger.error("invalid itemIdentifier %r: the whole batch failed", identifier)
            return everything
        failed.add(identifier)
    return failed


class QueuePoller:
    """Lambda's SQS event source mapping for one queue (module docstring).

    Implements the local stack's ``BackgroundWorker`` protocol.

    Args:
        queue_url: the queue to poll.
        handler: the Lambda handler, or its ``"module:attribute"`` (imported
            by :meth:`start`).
        sqs: a boto3 SQS client (thread-safe; shared by the pollers).
        concurrency: poller threads, each running one batch at a time.
        batch_size: ``MaxNumberOfMessages``, 1-10.
        function_name: the fake function's name (context, logs).
        function_timeout: seconds, the context's time budget.
        region: the records' ``awsRegion``.
        wait_seconds: ``WaitTimeSeconds`` of each receive (whole seconds, 0-20).

    Attributes:
        function_name: the function each invocation's context names.
    """

    def __init__(
        self,
        queue_url: str,
        handler: Handler | str,
        *,
        sqs: Any,
        concurrency: int = DEFAULT_CONCURRENCY,
        batch_size: int = 10,
        function_name: str = f"{SERVICE_NAME}-function",
        function_timeout: float = 30.0,
        region: str = LOCAL_REGION,
        wait_seconds: int = RECEIVE_WAIT_SECONDS,
    ) -> None:
        if concurrency < 1:
            raise ValueError("concurrency must be ≥ 1")
        if not 1 <= batch_size <= 10:
            raise ValueError("batch_size must be 1-10 (SQS ReceiveMessage)")
        self.queue_url = queue_url
        self.name = f"poller:{queue_url.rsplit('/', 1)[-1]}"
        self._handler_ref = handler
        self._handler: Handler | None = None
        self._sqs = sqs
        self._concurrency = concurrency
        self._batch_size = batch_size
        self.function_name = function_name
        self._function_timeout = function_timeout
        self._region = region
        self._wait_seconds = wait_seconds
        self._queue_arn = ""
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        """Import the handler, look up the queue's ARN and start the poller threads."""
        if self._threads:
            raise RuntimeError(f"{self.name} is already started")
        self._handler = resolve_handler(self._handler_ref)
        attributes = self._sqs.get_queue_attributes(
            QueueUrl=self.queue_url, AttributeNames=["QueueArn"]
        )["Attributes"]
        self._queue_arn = attributes["QueueArn"]
        self._stopping.clear()
        for number in range(self._concurrency):
            thread = threading.Thread(target=self._run, name=f"{self.name}#{number}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def request_stop(self) -> None:
        """Ask the threads to stop after their current receive or batch; return at once."""
        self._stopping.set()

    def stop(self, timeout: float) -> None:
        """Stop receiving; wait up to ``timeout`` seconds for the threads' batches to end."""
        self._stopping.set()
        for thread in self._threads:
            thread.join(timeout)
            if thread.is_alive():
                logger.warning("%s did not stop within %.1f s", thread.name, timeout)
        self._threads = []

    @property
    def running(self) -> bool:
        """Whether any poller thread is alive."""
        return any(thread.is_alive() for thread in self._threads)

    def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                self.poll_once()
            except Exception:
                if self._stopping.is_set():
                    break
                logger.exception("%s: receive or delete failed", self.name)
                self._stopping.wait(ERROR_PAUSE_SECONDS)

    def poll_once(self) -> int:
        """Receive one batch, run the handler, delete the successes; return the batch's size."""
        response = self._sqs.receive_message(
            QueueUrl=self.queue_url,
            MaxNumberOfMessages=self._batch_size,
            WaitTimeSeconds=self._wait_seconds,
            MessageSystemAttributeNames=["All"],
            MessageAttributeNames=["All"],
        )
        messages = response.get("Messages", [])
        if messages:
            self._process(messages)
        return len(messages)

    def _process(self, messages: Sequence[Mapping[str, Any]]) -> None:
        if self._handler is None:
            raise RuntimeError(f"{self.name} is not started")
        records = [lambda_sqs_record(m, self._queue_arn, self._region) for m in messages]
        ids = [record["messageId"] for record in records]
        context = FakeLambdaContext(self.function_name, timeout_seconds=self._function_timeout)
        try:
            with invocation(context):
                result = self._handler({"Records": records}, context)
        except Exception:
            logger.exception(
                "%s: handler raised: the whole batch of %d fails", self.name, len(records)
            )
            return
        failed = failed_message_ids(result, ids)
        done = [record for record in records if record["messageId"] not in failed]
        if failed:
            logger.debug("%s: %d of %d records failed", self.name, len(failed), len(records))
        self._delete(done)

    def _delete(self, records: Sequence[Mapping[str, Any]]) -> None:
        for start in range(0, len(records), _DELETE_BATCH):
            chunk = records[start : start + _DELETE_BATCH]
            response = self._sqs.delete_message_batch(
                QueueUrl=self.queue_url,
                Entries=[
                    {"Id": str(n), "ReceiptHandle": r["receiptHandle"]} for n, r in enumerate(chunk)
                ],
            )
            for failure in response.get("Failed", []):
                # The message comes back after its visibility timeout and is
                # processed again: the handlers are idempotent (DESIGN §4).
                logger.warning(
                    "%s: could not delete message %s: %s",
                    self.name,
                    chunk[int(failure["Id"])]["messageId"],
                    failure.get("Message") or failure.get("Code"),
                )


__all__ = [
    "DEFAULT_CONCURRENCY",
    "RECEIVE_WAIT_SECONDS",
    "QueuePoller",
    "failed_message_ids",
    "lambda_sqs_record",
    "resolve_handler",
    "sqs_client",
]
