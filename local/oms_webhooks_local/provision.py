"""Create the AWS resources the service needs, idempotently, from their single definitions.

Provisioning is a list of steps (:data:`STEPS`), each a function
``step(ctx) -> list[str]`` that creates what is missing and returns a line per
resource for the log. Running the list twice changes nothing the second time.
Tables come from :func:`oms_webhooks.storage.specs.table_specs`; the messaging
resources (SQS queues and their DLQs, the EventBridge bus, and the rule that
sends catalogue events to the ingress queue) from :mod:`oms_webhooks.resources`,
with the bus name and event source of the settings (``bus_name``,
``event_source``). They mirror the CDK stack (``infra/``): same queue
attributes, the same rule pattern, and the queue policy CDK's ``SqsQueue``
target writes (``events.amazonaws.com`` may ``sqs:SendMessage`` for that rule).
An existing queue whose attributes differ is updated to the definition.

Every boto3 client is built with an explicit endpoint (moto's server on the
local stack); nothing here reads ``AWS_ENDPOINT_URL`` by itself.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

from oms_webhooks.limits import SQS_MAX_RETENTION_SECONDS
from oms_webhooks.resources import (
    DELIVERY_QUEUE,
    DELIVERY_SLOW_QUEUE,
    INGRESS_QUEUE,
    QUEUES,
    RECOVERY_QUEUE,
    RULE_NAME,
    SECRETS_KEY_ALIAS,
    QueueSpec,
    ingress_event_pattern,
)
from oms_webhooks.settings import Settings, get_settings
from oms_webhooks.storage.specs import IndexSpec, TableSpec, table_specs

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
    """The ``CreateTable`` parameters for ``spec`` (on-demand, GSIs projecting as declared)."""
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
                "Projection": _projection(index),
            }
            for index in spec.indexes
        ]
    return request


def _projection(index: IndexSpec) -> dict[str, Any]:
    if index.projection == "INCLUDE":
        return {
            "ProjectionType": "INCLUDE",
            "NonKeyAttributes": list(index.non_key_attributes or ()),
        }
    return {"ProjectionType": index.projection}


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
    if state == "exists" and _add_missing_indexes(dynamodb, spec, ctx.settings):
        state = "updated"
    if spec.ttl_attribute:
        ttl = dynamodb.describe_time_to_live(TableName=name)["TimeToLiveDescription"]
        if ttl.get("TimeToLiveStatus") not in ("ENABLED", "ENABLING"):
            dynamodb.update_time_to_live(
                TableName=name,
                TimeToLiveSpecification={"Enabled": True, "AttributeName": spec.ttl_attribute},
            )
    return f"dynamodb table {name}: {state}"


def _add_missing_indexes(dynamodb: Any, spec: TableSpec, settings: Settings) -> bool:
    """Add the GSIs of ``spec`` an existing table lacks (a state kept from an older version)."""
    name = spec.name(settings)
    table = dynamodb.describe_table(TableName=name)["Table"]
    have = {index["IndexName"] for index in table.get("GlobalSecondaryIndexes", [])}
    request = create_table_request(spec, settings)
    missing = [i for i in request.get("GlobalSecondaryIndexes", []) if i["IndexName"] not in have]
    for index in missing:
        keys = {k["AttributeName"] for k in index["KeySchema"]}
        dynamodb.update_table(
            TableName=name,
            AttributeDefinitions=[
                a for a in request["AttributeDefinitions"] if a["AttributeName"] in keys
            ],
            GlobalSecondaryIndexUpdates=[{"Create": index}],
        )
    return bool(missing)


def provision_tables(ctx: ProvisionContext) -> list[str]:
    """Step: every DynamoDB table of :func:`~oms_webhooks.storage.specs.table_specs`.

    Returns:
        one line per table, ``"dynamodb table <name>: created|exists"``.

    Raises:
        botocore.exceptions.ClientError: any error other than "already exists".
    """
    return [_ensure_table(ctx, spec) for spec in table_specs()]


# -- SQS ---------------------------------------------------------------------------


def queue_attributes(spec: QueueSpec, dlq_arn: str | None) -> dict[str, str]:
    """The SQS attributes of ``spec`` (or of its DLQ when ``dlq_arn`` is None).

    A queue: ``VisibilityTimeout``, ``MessageRetentionPeriod`` and a
    ``RedrivePolicy`` to ``dlq_arn`` after ``max_receive_count`` receives.
    A DLQ: the maximum retention (14 days), so poison waits for an operator.
    """
    if dlq_arn is None:
        return {"MessageRetentionPeriod": str(SQS_MAX_RETENTION_SECONDS)}
    return {
        "VisibilityTimeout": str(spec.visibility_timeout),
        "MessageRetentionPeriod": str(spec.retention),
        "RedrivePolicy": json.dumps(
            {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": spec.max_receive_count}
        ),
    }


def _same_attribute(name: str, have: str | None, want: str) -> bool:
    if have is None:
        return False
    if name in ("RedrivePolicy", "Policy"):
        return bool(json.loads(have) == json.loads(want))
    return have == want


def _ensure_queue(ctx: ProvisionContext, name: str, attributes: dict[str, str]) -> tuple[str, str]:
    """Create queue ``name`` or bring its ``attributes`` in line; return (ARN, log line)."""
    sqs = ctx.client("sqs")
    try:
        url = sqs.get_queue_url(QueueName=name)["QueueUrl"]
    except ClientError as exc:
        if exc.response["Error"]["Code"] not in (
            "AWS.SimpleQueueService.NonExistentQueue",
            "QueueDoesNotExist",
        ):
            raise
        url = sqs.create_queue(QueueName=name, Attributes=attributes)["QueueUrl"]
        state = "created"
    else:
        have = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
        if all(_same_attribute(k, have.get(k), v) for k, v in attributes.items()):
            state = "exists"
        else:
            sqs.set_queue_attributes(QueueUrl=url, Attributes=attributes)
            state = "updated"
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    return str(arn), f"sqs queue {name}: {state}"


def provision_queues(ctx: ProvisionContext) -> list[str]:
    """Step: every queue of :data:`~oms_webhooks.resources.QUEUES`, its DLQ first.

    Returns:
        one line per queue, ``"sqs queue <name>: created|exists|updated"``.
    """
    lines: list[str] = []
    for spec in QUEUES:
        dlq_arn, line = _ensure_queue(ctx, spec.dlq_name, queue_attributes(spec, None))
        lines.append(line)
        _, line = _ensure_queue(ctx, spec.name, queue_attributes(spec, dlq_arn))
        lines.append(line)
    return lines


def queue_url(ctx: ProvisionContext, spec: QueueSpec) -> str:
    """The URL of ``spec``'s queue (it must exist)."""
    return str(ctx.client("sqs").get_queue_url(QueueName=spec.name)["QueueUrl"])


# -- EventBridge -------------------------------------------------------------------


def provision_bus(ctx: ProvisionContext) -> list[str]:
    """Step: the EventBridge bus ``settings.bus_name`` (``default`` always exists).

    Returns:
        ``["eventbridge bus <name>: created|exists"]``.
    """
    name = ctx.settings.bus_name
    if name == "default":
        return ["eventbridge bus default: exists"]
    try:
        ctx.client("events").create_event_bus(Name=name)
        state = "created"
    except ClientError as exc:
        if exc.response["Error"]["Code"] != "ResourceAlreadyExistsException":
            raise
        state = "exists"
    return [f"eventbridge bus {name}: {state}"]


def ingress_queue_policy(queue_arn: str, rule_arn: str) -> dict[str, Any]:
    """The ingress queue's policy: EventBridge may send to it for ``rule_arn`` only.

    The statement CDK's ``aws_events_targets.SqsQueue`` adds to the queue.
    """
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "AllowEventBridgeIngressRule",
                "Effect": "Allow",
                "Principal": {"Service": "events.amazonaws.com"},
                "Action": ["sqs:SendMessage", "sqs:GetQueueAttributes", "sqs:GetQueueUrl"],
                "Resource": queue_arn,
                "Condition": {"ArnEquals": {"aws:SourceArn": rule_arn}},
            }
        ],
    }


#: Id of the rule's only target (the ingress queue).
RULE_TARGET_ID = "ingress-queue"


def _rule_state(events: Any, bus: str, pattern: dict[str, Any]) -> tuple[str, str | None]:
    """("created"|"updated"|"exists", the rule's ARN if it is already as wanted)."""
    try:
        rule = events.describe_rule(Name=RULE_NAME, EventBusName=bus)
    except ClientError as exc:
        if exc.response["Error"]["Code"] != "ResourceNotFoundException":
            raise
        return "created", None
    same = (
        rule.get("State") == "ENABLED" and json.loads(rule.get("EventPattern") or "{}") == pattern
    )
    return ("exists", str(rule["Arn"])) if same else ("updated", None)


def provision_rule(ctx: ProvisionContext) -> list[str]:
    """Step: the rule on the bus (source and catalogue detail-types) → the ingress queue.

    Also writes the ingress queue's policy (:func:`ingress_queue_policy`).
    What is already as defined is left alone.

    Returns:
        ``"eventbridge rule <name>: created|updated|exists"``,
        ``"eventbridge target <rule>/<id>: created|updated|exists"`` and
        ``"sqs queue policy <queue>: created|updated|exists"``.
    """
    events = ctx.client("events")
    sqs = ctx.client("sqs")
    bus = ctx.settings.bus_name
    pattern = ingress_event_pattern(ctx.settings.event_source)
    rule_state, rule_arn = _rule_state(events, bus, pattern)
    if rule_arn is None:
        rule_arn = events.put_rule(
            Name=RULE_NAME,
            EventBusName=bus,
            EventPattern=json.dumps(pattern),
            State="ENABLED",
            Description="OMS catalogue events to the ingress queue",
        )["RuleArn"]
    url = queue_url(ctx, INGRESS_QUEUE)
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn", "Policy"])[
        "Attributes"
    ]
    arn = attributes["QueueArn"]
    targets = events.list_targets_by_rule(Rule=RULE_NAME, EventBusName=bus)["Targets"]
    current = {t["Id"]: t.get("Arn") for t in targets}
    if current.get(RULE_TARGET_ID) == arn:
        target_state = "exists"
    else:
        target_state = "updated" if RULE_TARGET_ID in current else "created"
        events.put_targets(
            Rule=RULE_NAME, EventBusName=bus, Targets=[{"Id": RULE_TARGET_ID, "Arn": arn}]
        )
    policy = json.dumps(ingress_queue_policy(arn, rule_arn))
    if _same_attribute("Policy", attributes.get("Policy"), policy):
        policy_state = "exists"
    else:
        policy_state = "updated" if attributes.get("Policy") else "created"
        sqs.set_queue_attributes(QueueUrl=url, Attributes={"Policy": policy})
    return [
        f"eventbridge rule {RULE_NAME} on {bus}: {rule_state}",
        f"eventbridge target {RULE_NAME}/{RULE_TARGET_ID}: {target_state}",
        f"sqs queue policy {INGRESS_QUEUE.name}: {policy_state}",
    ]


#: The provisioning steps, in order (queues before the rule that targets them).
def provision_secrets_key(ctx: ProvisionContext) -> list[str]:
    """Step: the KMS key that seals partner secrets, under :data:`SECRETS_KEY_ALIAS`.

    Returns:
        ``["kms key <alias>: created|exists"]``.
    """
    kms = ctx.client("kms")
    aliases = kms.list_aliases()["Aliases"]
    if any(a["AliasName"] == SECRETS_KEY_ALIAS for a in aliases):
        return [f"kms key {SECRETS_KEY_ALIAS}: exists"]
    key_id = kms.create_key(Description="oms-webhooks partner secrets")["KeyMetadata"]["KeyId"]
    kms.create_alias(AliasName=SECRETS_KEY_ALIAS, TargetKeyId=key_id)
    return [f"kms key {SECRETS_KEY_ALIAS}: created"]


STEPS: list[Step] = [
    provision_tables,
    provision_queues,
    provision_bus,
    provision_rule,
    provision_secrets_key,
]


def provisioned_environ(
    endpoint_url: str | None,
    *,
    settings: Settings | None = None,
    region: str = LOCAL_REGION,
    local_credentials: bool = True,
) -> dict[str, str]:
    """The settings the handlers need that only exist once provisioned.

    Returns:
        ``OMS_WEBHOOKS_DELIVERY_QUEUE_URL`` (the router sends to it),
        ``OMS_WEBHOOKS_DELIVERY_SLOW_QUEUE_URL`` (the slow lane) and
        ``OMS_WEBHOOKS_DELIVERY_DLQ_URL`` (the dispatcher moves malformed
        messages there).
    """
    ctx = ProvisionContext(
        endpoint_url=endpoint_url,
        settings=settings or get_settings(),
        region=region,
        local_credentials=local_credentials,
    )
    sqs = ctx.client("sqs")
    return {
        "OMS_WEBHOOKS_DELIVERY_QUEUE_URL": queue_url(ctx, DELIVERY_QUEUE),
        "OMS_WEBHOOKS_DELIVERY_SLOW_QUEUE_URL": queue_url(ctx, DELIVERY_SLOW_QUEUE),
        "OMS_WEBHOOKS_DELIVERY_DLQ_URL": str(
            sqs.get_queue_url(QueueName=DELIVERY_QUEUE.dlq_name)["QueueUrl"]
        ),
        "OMS_WEBHOOKS_SECRETS_KMS_KEY_ID": SECRETS_KEY_ALIAS,
        "OMS_WEBHOOKS_RECOVERY_QUEUE_URL": queue_url(ctx, RECOVERY_QUEUE),
    }


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
    "RULE_TARGET_ID",
    "STEPS",
    "ProvisionContext",
    "Step",
    "create_table_request",
    "ingress_queue_policy",
    "provision",
    "provision_bus",
    "provision_queues",
    "provision_rule",
    "provision_tables",
    "provisioned_environ",
    "queue_attributes",
    "queue_url",
]
