"""Bus, rule and queues: every queue has a DLQ, SSE, TLS only; visibility ≥ 6 × timeout."""

from __future__ import annotations

from typing import Any

import pytest
from aws_cdk.assertions import Match

from oms_webhooks.resources import (
    DELIVERY_QUEUE,
    INGRESS_QUEUE,
    QUEUES,
    QueueSpec,
    ingress_event_pattern,
)
from oms_webhooks_infra.messaging import check_visibility
from tests.infra.conftest import STACK_NAME, Synthesized


def _queue_named(synthesized: Synthesized, name: str) -> tuple[str, dict[str, Any]]:
    for logical_id, queue in synthesized.resources("AWS::SQS::Queue").items():
        if queue["Properties"].get("QueueName") == f"{STACK_NAME}-{name}":
            return logical_id, queue["Properties"]
    raise AssertionError(f"no queue named {name}")


@pytest.mark.parametrize("spec", QUEUES, ids=lambda s: s.name)
def test_queue_has_its_dlq_with_the_spec_receive_count(
    synthesized: Synthesized, spec: QueueSpec
) -> None:
    _, props = _queue_named(synthesized, spec.name)
    dlq_id, _ = _queue_named(synthesized, spec.dlq_name)
    assert props["RedrivePolicy"] == {
        "deadLetterTargetArn": {"Fn::GetAtt": [dlq_id, "Arn"]},
        "maxReceiveCount": spec.max_receive_count,
    }
    assert props["VisibilityTimeout"] == spec.visibility_timeout
    assert props["MessageRetentionPeriod"] == spec.retention


def test_delivery_queue_allows_sqs_maximum_receives_and_ingress_few() -> None:
    # Retries and countdown hops both count receives (DESIGN §5, §8).
    assert DELIVERY_QUEUE.max_receive_count == 1000
    assert INGRESS_QUEUE.max_receive_count <= 10


def test_every_queue_without_redrive_is_a_dead_letter_queue(synthesized: Synthesized) -> None:
    queues = synthesized.resources("AWS::SQS::Queue")
    dlq_ids = {
        q["Properties"]["RedrivePolicy"]["deadLetterTargetArn"]["Fn::GetAtt"][0]
        for q in queues.values()
        if "RedrivePolicy" in q["Properties"]
    }
    rule = next(iter(synthesized.resources("AWS::Events::Rule").values()))
    dlq_ids |= {
        t["DeadLetterConfig"]["Arn"]["Fn::GetAtt"][0] for t in rule["Properties"]["Targets"]
    }
    without_redrive = {k for k, q in queues.items() if "RedrivePolicy" not in q["Properties"]}
    assert without_redrive == dlq_ids
    assert len(queues) == 2 * len(QUEUES) + 1


def test_every_queue_is_encrypted(synthesized: Synthesized) -> None:
    synthesized.template.all_resources_properties("AWS::SQS::Queue", {"SqsManagedSseEnabled": True})


def test_every_queue_refuses_requests_without_tls(synthesized: Synthesized) -> None:
    queues = set(synthesized.resources("AWS::SQS::Queue"))
    tls_only: set[str] = set()
    for policy in synthesized.resources("AWS::SQS::QueuePolicy").values():
        props = policy["Properties"]
        for statement in props["PolicyDocument"]["Statement"]:
            if statement["Effect"] == "Deny" and statement.get("Condition") == {
                "Bool": {"aws:SecureTransport": "false"}
            }:
                tls_only |= {q["Ref"] for q in props["Queues"]}
    assert tls_only == queues


@pytest.mark.parametrize("spec", QUEUES, ids=lambda s: s.name)
def test_visibility_is_at_least_six_times_the_consumer_timeout(
    synthesized: Synthesized, spec: QueueSpec
) -> None:
    queue_id, props = _queue_named(synthesized, spec.name)
    functions = synthesized.resources("AWS::Lambda::Function")
    mappings = [
        m["Properties"]
        for m in synthesized.resources("AWS::Lambda::EventSourceMapping").values()
        if m["Properties"]["EventSourceArn"] == {"Fn::GetAtt": [queue_id, "Arn"]}
    ]
    assert len(mappings) == 1
    consumer = functions[mappings[0]["FunctionName"]["Ref"]]["Properties"]
    assert consumer["Timeout"] == spec.function_timeout
    assert props["VisibilityTimeout"] >= 6 * consumer["Timeout"]


def test_a_queue_spec_breaking_the_visibility_rule_is_refused() -> None:
    bad = QueueSpec(name="x", visibility_timeout=59, max_receive_count=5, function_timeout=10)
    with pytest.raises(ValueError, match="visibility"):
        check_visibility(bad)


def test_rule_sends_catalogue_events_to_ingress_with_dlq_and_retries(
    synthesized: Synthesized,
) -> None:
    ingress_id, _ = _queue_named(synthesized, INGRESS_QUEUE.name)
    pattern = ingress_event_pattern("oms")
    synthesized.template.has_resource_properties(
        "AWS::Events::Rule",
        {
            "EventPattern": {"source": pattern["source"], "detail-type": pattern["detail-type"]},
            "Targets": [
                Match.object_like(
                    {
                        "Arn": {"Fn::GetAtt": [ingress_id, "Arn"]},
                        "DeadLetterConfig": {"Arn": Match.any_value()},
                        "RetryPolicy": {
                            "MaximumRetryAttempts": Match.any_value(),
                            "MaximumEventAgeInSeconds": Match.any_value(),
                        },
                    }
                )
            ],
        },
    )


def test_bus_is_created_with_the_default_name(synthesized: Synthesized) -> None:
    synthesized.template.has_resource_properties("AWS::Events::EventBus", {"Name": "oms"})
    synthesized.template.has_output("BusName", {"Value": Match.any_value()})


def test_every_queue_has_its_own_name(synthesized: Synthesized) -> None:
    # Two queues with one name cannot both be created: the rule's target DLQ
    # must not take the name of the ingress queue's DLQ.
    names = [
        q["Properties"]["QueueName"] for q in synthesized.resources("AWS::SQS::Queue").values()
    ]
    assert len(names) == len(set(names)), names
