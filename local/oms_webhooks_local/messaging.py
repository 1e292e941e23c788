"""Provisioning steps for the messaging resources: SQS queues, the EventBridge bus and rule, KMS.

Each step is ``step(ctx) -> list[str]`` (:data:`oms_webhooks_local.provision.Step`),
idempotent, from the single definitions of :mod:`oms_webhooks.resources`:
the same queue attributes, rule pattern and queue policy (the statement CDK's
``SqsQueue`` target writes) as the CDK stack (``infra/``). An existing queue
whose attributes differ is updated to the definition.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from oms_webhooks.limits import SQS_MAX_RETENTION_SECONDS
from oms_webhooks.resources import (
    INGRESS_QUEUE,
    QUEUES,
    RULE_NAME,
    SECRETS_KEY_ALIAS,
    QueueSpec,
    ingress_event_pattern,
)

if TYPE_CHECKING:
    from oms_webhooks_local.provision import ProvisionContext

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


__all__ = [
    "RULE_TARGET_ID",
    "ingress_queue_policy",
    "provision_bus",
    "provision_queues",
    "provision_rule",
    "provision_secrets_key",
    "queue_attributes",
    "queue_url",
]
