"""Create the AWS resources the service needs, idempotently, from their single definitions.

Provisioning is a list of steps (:data:`STEPS`), each a function
``step(ctx) -> list[str]`` that creates what is missing and returns a line per
resource for the log. Running the list twice changes nothing the second time.
Tables come from :func:`oms_webhooks.tables.table_specs`; the messaging
resources (EventBridge bus and rule, SQS queues and DLQs from
:mod:`oms_webhooks.resources`) are added as further steps in :data:`STEPS`.

Every boto3 client is built with an explicit endpoint (moto's server on the
local stack); nothing here reads ``AWS_ENDPOINT_URL`` by itself.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

from oms_webhooks.settings import Settings, get_settings
from oms_webhooks.tables import TableSpec, table_specs

logger = logging.getLogger(__name__)

#: Region and credentials of the local stack (moto's default account), DESIGN §6.
LOCAL_REGION = "us-east-1"
LOCAL_ACCESS_KEY_ID = "testing"
LOCAL_SECRET_ACCESS_KEY = "testing"  # noqa: S105 - moto's well-known fake credentials


@dataclass
class ProvisionContext:
    """What a provisioning step needs: the endpoint, the settings and AWS clients.

    Attributes:
        endpoint_url: the AWS endpoint (``http://127.0.0.1:<port>`` for moto),
            or None for the default endpoint of real AWS.
        settings: resource names and options.
        region: the AWS region.
        local_credentials: sign with moto's ``testing``/``testing`` credentials
            (True) or use the default credential chain (False).
    """

    endpoint_url: str | None
    settings: Settings
    region: str = LOCAL_REGION
    local_credentials: bool = True

    def client(self, service: str) -> Any:
        """A boto3 client for ``service`` (``"dynamodb"``, ``"sqs"``, ...).

        Clients are cached per process by service, endpoint, region and
        credentials mode (building one costs ~0.1 s; they are thread-safe).
        """
        key = (service, self.endpoint_url, self.region, self.local_credentials)
        with _clients_lock:
            if key not in _clients:
                kwargs: dict[str, Any] = {
                    "region_name": self.region,
                    "endpoint_url": self.endpoint_url,
                    "config": Config(retries={"max_attempts": 3, "mode": "standard"}),
                }
                if self.local_credentials:
                    kwargs["aws_access_key_id"] = LOCAL_ACCESS_KEY_ID
                    kwargs["aws_secret_access_key"] = LOCAL_SECRET_ACCESS_KEY
                _clients[key] = boto3.session.Session().client(service, **kwargs)
            return _clients[key]


_clients: dict[tuple[str, str | None, str, bool], Any] = {}
_clients_lock = threading.Lock()

#: A provisioning step: creates what is missing, returns one log line per resource.
Step = Callable[[ProvisionContext], list[str]]


def _attribute_definitions(spec: TableSpec) -> list[dict[str, str]]:
    keys = [spec.hash_key, spec.range_key]
    for index in spec.indexes:
        keys += [index.hash_key, index.range_key]
    seen: dict[str, str] = {}
    for key in keys:
        if key is not None:
            seen.setdefault(key[0], key[1])
    return [{"AttributeName": n, "AttributeType": t} for n, t in seen.items()]


def _key_schema(hash_key: tuple[str, str], range_key: tuple[str, str] | None) -> list[Any]:
    schema = [{"AttributeName": hash_key[0], "KeyType": "HASH"}]
    if range_key is not None:
        schema.append({"AttributeName": range_key[0], "KeyType": "RANGE"})
    return schema


def create_table_request(spec: TableSpec, settings: Settings) -> dict[str, Any]:
    """The ``CreateTable`` parameters for ``spec`` (on-demand, GSIs projecting ALL)."""
    request: dict[str, Any] = {
        "TableName": spec.name(settings),
        "AttributeDefinitions": _attribute_definitions(spec),
        "KeySchema": _key_schema(spec.hash_key, spec.range_key),
        "BillingMode": "PAY_PER_REQUEST",
    }
    if spec.indexes:
        request["GlobalSecondaryIndexes"] = [
            {
                "IndexName": index.name,
                "KeySchema": _key_schema(index.hash_key, index.range_key),
                "Projection": {"ProjectionType": "ALL"},
            }
            for index in spec.indexes
        ]
    return request


def _ensure_table(ctx: ProvisionContext, spec: TableSpec) -> str:
    dynamodb = ctx.client("dynamodb")
    name = spec.name(ctx.settings)
    try:
        dynamodb.create_table(**create_table_request(spec, ctx.settings))
        state = "created"
    except ClientError as exc:
        if exc.response["Error"]["Code"] != "ResourceInUseException":
            raise
        state = "exists"
    dynamodb.get_waiter("table_exists").wait(
        TableName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 60}
    )
    if spec.ttl_attribute:
        ttl = dynamodb.describe_time_to_live(TableName=name)["TimeToLiveDescription"]
        if ttl.get("TimeToLiveStatus") not in ("ENABLED", "ENABLING"):
            dynamodb.update_time_to_live(
                TableName=name,
                TimeToLiveSpecification={"Enabled": True, "AttributeName": spec.ttl_attribute},
            )
    return f"dynamodb table {name}: {state}"


def provision_tables(ctx: ProvisionContext) -> list[str]:
    """Step: every DynamoDB table of :func:`~oms_webhooks.tables.table_specs`.

    Returns:
        one line per table, ``"dynamodb table <name>: created|exists"``.

    Raises:
        botocore.exceptions.ClientError: any error other than "already exists".
    """
    return [_ensure_table(ctx, spec) for spec in table_specs()]


#: The provisioning steps, in order. The messaging issue appends the bus, the
#: rule and the queues here (queues before the rule that targets them).
STEPS: list[Step] = [provision_tables]


def provision(
    endpoint_url: str | None,
    *,
    settings: Settings | None = None,
    region: str = LOCAL_REGION,
    local_credentials: bool = True,
    steps: Sequence[Step] | None = None,
) -> list[str]:
    """Create every missing resource on ``endpoint_url``; idempotent.

    Args:
        endpoint_url: AWS endpoint, e.g. ``http://127.0.0.1:4566`` (moto), or
            None for real AWS.
        settings: names and options; default :func:`~oms_webhooks.settings.get_settings`.
        region: the AWS region (the local stack always uses ``us-east-1``).
        local_credentials: sign with ``testing``/``testing`` (moto) instead of
            the default credential chain.
        steps: the steps to run; default :data:`STEPS`.

    Returns:
        one log line per resource (what was created, what already existed).

    Raises:
        botocore.exceptions.ClientError, botocore.exceptions.EndpointConnectionError:
            the endpoint refused a request or could not be reached.
    """
    ctx = ProvisionContext(
        endpoint_url=endpoint_url,
        settings=settings or get_settings(),
        region=region,
        local_credentials=local_credentials,
    )
    lines: list[str] = []
    for step in STEPS if steps is None else steps:
        done = step(ctx)
        for line in done:
            logger.debug("provision: %s", line)
        lines.extend(done)
    return lines


__all__ = [
    "LOCAL_ACCESS_KEY_ID",
    "LOCAL_REGION",
    "LOCAL_SECRET_ACCESS_KEY",
    "STEPS",
    "ProvisionContext",
    "Step",
    "create_table_request",
    "provision",
    "provision_tables",
]
