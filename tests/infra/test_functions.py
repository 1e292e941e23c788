"""Functions: runtime, architecture, Powertools env, mappings and least-privilege roles."""

from __future__ import annotations

from typing import Any

import pytest
from aws_cdk.assertions import Match

from oms_webhooks.resources import (
    DELIVERY_QUEUE,
    DELIVERY_SLOW_QUEUE,
    INGRESS_QUEUE,
    RECOVERY_QUEUE,
)
from oms_webhooks.settings import Settings
from oms_webhooks_infra import constants as c
from tests.infra.conftest import SLOW_LANE_MAX_CONCURRENCY, Synthesized

_HANDLERS = set(c.HANDLERS.values())


def _function_by_handler(synthesized: Synthesized, handler: str) -> tuple[str, dict[str, Any]]:
    for logical_id, function in synthesized.resources("AWS::Lambda::Function").items():
        if function["Properties"].get("Handler") == handler:
            return logical_id, function["Properties"]
    raise AssertionError(f"no function with handler {handler}")


def _statements_of(synthesized: Synthesized, handler: str) -> list[dict[str, Any]]:
    """Every IAM statement attached to the role of the function with ``handler``."""
    _, props = _function_by_handler(synthesized, handler)
    role_id = props["Role"]["Fn::GetAtt"][0]
    statements: list[dict[str, Any]] = []
    for policy in synthesized.resources("AWS::IAM::Policy").values():
        if {"Ref": role_id} in policy["Properties"]["Roles"]:
            statements += policy["Properties"]["PolicyDocument"]["Statement"]
    return statements


def _actions_on(statements: list[dict[str, Any]], logical_id: str) -> set[str]:
    """Actions the statements allow on resource ``logical_id`` (its ARN or its indexes)."""
    actions: set[str] = set()
    for statement in statements:
        resources = statement["Resource"]
        resources = resources if isinstance(resources, list) else [resources]
        if any(logical_id in str(r) for r in resources):
            acts = statement["Action"]
            actions |= set(acts if isinstance(acts, list) else [acts])
    return actions


def _logical_id(synthesized: Synthesized, type_name: str, fragment: str) -> str:
    matches = [k for k in synthesized.resources(type_name) if fragment in k]
    assert len(matches) == 1, (fragment, matches)
    return matches[0]


def test_four_functions_one_per_handler(synthesized: Synthesized) -> None:
    handlers = {
        f["Properties"]["Handler"] for f in synthesized.resources("AWS::Lambda::Function").values()
    }
    assert handlers == _HANDLERS


def test_functions_run_python_312_or_newer_on_arm64_with_tracing(
    synthesized: Synthesized,
) -> None:
    for function in synthesized.resources("AWS::Lambda::Function").values():
        props = function["Properties"]
        major, minor = props["Runtime"].removeprefix("python").split(".")
        assert (int(major), int(minor)) >= (3, 12)
        assert props["Architectures"] == ["arm64"]
        assert props["TracingConfig"] == {"Mode": "Active"}


def test_functions_carry_powertools_env_and_refuse_private_targets(
    synthesized: Synthesized,
) -> None:
    synthesized.template.all_resources_properties(
        "AWS::Lambda::Function",
        {
            "Environment": {
                "Variables": Match.object_like(
                    {
                        "POWERTOOLS_SERVICE_NAME": "oms-webhooks",
                        "POWERTOOLS_LOG_LEVEL": "INFO",
                        "POWERTOOLS_METRICS_NAMESPACE": c.DEFAULT_METRICS_NAMESPACE,
                        "OMS_WEBHOOKS_ALLOW_PRIVATE_TARGETS": "false",
                        "OMS_WEBHOOKS_DELIVERY_QUEUE_URL": {"Ref": Match.any_value()},
                    }
                )
            }
        },
    )


def test_lambda_keeps_its_platform_lines_out_and_the_application_level_in_sync(
    synthesized: Synthesized,
) -> None:
    # START/END/REPORT are INFO: not written at WARN, ~300 bytes per invocation saved
    # (issue 16); the application's level is the one Powertools logs at.
    synthesized.template.all_resources_properties(
        "AWS::Lambda::Function",
        {
            "LoggingConfig": Match.object_like(
                {"LogFormat": "JSON", "SystemLogLevel": "WARN", "ApplicationLogLevel": "INFO"}
            )
        },
    )


def test_each_function_has_its_own_role_and_log_group(synthesized: Synthesized) -> None:
    functions = synthesized.resources("AWS::Lambda::Function").values()
    roles = {f["Properties"]["Role"]["Fn::GetAtt"][0] for f in functions}
    groups = {f["Properties"]["LoggingConfig"]["LogGroup"]["Ref"] for f in functions}
    assert len(roles) == len(groups) == len(c.HANDLERS)
    for role in roles:
        assert "ManagedPolicyArns" not in synthesized.template_json["Resources"][role]["Properties"]


@pytest.mark.parametrize(
    ("handler", "spec", "max_concurrency"),
    [
        (c.HANDLERS["Router"], INGRESS_QUEUE, c.ROUTER_MAX_CONCURRENCY),
        (c.HANDLERS["Dispatcher"], DELIVERY_QUEUE, c.DEFAULT_DISPATCHER_MAX_CONCURRENCY),
        (c.HANDLERS["Dispatcher"], DELIVERY_SLOW_QUEUE, SLOW_LANE_MAX_CONCURRENCY),
        (c.HANDLERS["Recoverer"], RECOVERY_QUEUE, c.RECOVERER_MAX_CONCURRENCY),
    ],
)
def test_queue_consumers_report_batch_item_failures(
    synthesized: Synthesized, handler: str, spec: Any, max_concurrency: int
) -> None:
    function_id, _ = _function_by_handler(synthesized, handler)
    synthesized.template.has_resource_properties(
        "AWS::Lambda::EventSourceMapping",
        {
            "FunctionName": {"Ref": function_id},
            "FunctionResponseTypes": ["ReportBatchItemFailures"],
            "BatchSize": spec.batch_size,
            "ScalingConfig": {"MaximumConcurrency": max_concurrency},
        },
    )
    synthesized.template.resource_count_is("AWS::Lambda::EventSourceMapping", 4)


def test_no_wildcard_action_and_only_this_stacks_resources(synthesized: Synthesized) -> None:
    stack_resources = set(synthesized.template_json["Resources"])
    for policy in synthesized.resources("AWS::IAM::Policy").values():
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
            actions = statement["Action"]
            for action in actions if isinstance(actions, list) else [actions]:
                assert "*" not in action, action
            resources = statement["Resource"]
            for resource in resources if isinstance(resources, list) else [resources]:
                if resource == "*":  # X-Ray has no resource-level permissions
                    assert all(a.startswith("xray:") for a in actions), statement
                    continue
                refs = {
                    ref
                    for ref in stack_resources
                    if ref in str(resource)  # Ref, GetAtt or Join over them
                }
                assert refs, f"statement names a resource outside this stack: {resource}"


def test_authorizer_only_reads_tokens(synthesized: Synthesized) -> None:
    statements = _statements_of(synthesized, c.HANDLERS["Authorizer"])
    tokens = _logical_id(synthesized, "AWS::DynamoDB::Table", "TokensTable")
    subscriptions = _logical_id(synthesized, "AWS::DynamoDB::Table", "SubscriptionsTable")
    assert "dynamodb:GetItem" in _actions_on(statements, tokens)
    assert not {"dynamodb:PutItem", "dynamodb:UpdateItem"} & _actions_on(statements, tokens)
    assert _actions_on(statements, subscriptions) == set()
    assert not any(str(a).startswith("sqs:") for s in statements for a in s["Action"])


def test_router_reads_subscriptions_and_sends_deliveries(synthesized: Synthesized) -> None:
    statements = _statements_of(synthesized, c.HANDLERS["Router"])
    subscriptions = _logical_id(synthesized, "AWS::DynamoDB::Table", "SubscriptionsTable")
    delivery = _logical_id(synthesized, "AWS::SQS::Queue", "MessagingDeliveryQueue")
    ingress = _logical_id(synthesized, "AWS::SQS::Queue", "MessagingIngressQueue")
    on_subscriptions = _actions_on(statements, subscriptions)
    assert "dynamodb:Query" in on_subscriptions
    assert not {"dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem"} & (
        on_subscriptions
    )
    assert "sqs:SendMessage" in _actions_on(statements, delivery)
    assert "sqs:ReceiveMessage" in _actions_on(statements, ingress)


def test_dispatcher_updates_subscriptions_and_reschedules(synthesized: Synthesized) -> None:
    statements = _statements_of(synthesized, c.HANDLERS["Dispatcher"])
    subscriptions = _logical_id(synthesized, "AWS::DynamoDB::Table", "SubscriptionsTable")
    delivery = _logical_id(synthesized, "AWS::SQS::Queue", "MessagingDeliveryQueue")
    tokens = _logical_id(synthesized, "AWS::DynamoDB::Table", "TokensTable")
    assert "dynamodb:UpdateItem" in _actions_on(statements, subscriptions)
    assert {"sqs:ChangeMessageVisibility", "sqs:SendMessage", "sqs:DeleteMessage"} <= (
        _actions_on(statements, delivery)
    )
    assert _actions_on(statements, tokens) == set()


def test_api_manages_subscriptions_and_can_resend(synthesized: Synthesized) -> None:
    statements = _statements_of(synthesized, c.HANDLERS["Api"])
    subscriptions = _logical_id(synthesized, "AWS::DynamoDB::Table", "SubscriptionsTable")
    delivery = _logical_id(synthesized, "AWS::SQS::Queue", "MessagingDeliveryQueue")
    assert {"dynamodb:PutItem", "dynamodb:Query"} <= _actions_on(statements, subscriptions)
    assert _actions_on(statements, delivery) >= {"sqs:SendMessage"}
    assert "sqs:ReceiveMessage" not in _actions_on(statements, delivery)


def test_every_service_env_var_is_a_settings_field(synthesized: Synthesized) -> None:
    # A renamed setting must not leave the deployment setting a variable nobody reads.
    fields = {f"OMS_WEBHOOKS_{name.upper()}" for name in Settings.model_fields}
    for function in synthesized.resources("AWS::Lambda::Function").values():
        variables = function["Properties"]["Environment"]["Variables"]
        ours = {k for k in variables if k.startswith("OMS_WEBHOOKS_")}
        assert ours <= fields, ours - fields


def test_router_writes_deliveries_idempotently(synthesized: Synthesized) -> None:
    statements = _statements_of(synthesized, c.HANDLERS["Router"])
    deliveries = _logical_id(synthesized, "AWS::DynamoDB::Table", "DeliveriesTable")
    assert {"dynamodb:PutItem", "dynamodb:GetItem"} <= _actions_on(statements, deliveries)


def test_only_dispatcher_and_api_put_operational_events(synthesized: Synthesized) -> None:
    bus = _logical_id(synthesized, "AWS::Events::EventBus", "Bus")
    for name in ("Dispatcher", "Api"):
        statements = _statements_of(synthesized, c.HANDLERS[name])
        assert _actions_on(statements, bus) == {"events:PutEvents"}, name
    for name in ("Authorizer", "Router"):
        statements = _statements_of(synthesized, c.HANDLERS[name])
        assert _actions_on(statements, bus) == set(), name


def test_recoverer_enqueues_deliveries_and_the_api_starts_recoveries(
    synthesized: Synthesized,
) -> None:
    recovery = _logical_id(synthesized, "AWS::SQS::Queue", "MessagingRecoveryQueue")
    delivery = _logical_id(synthesized, "AWS::SQS::Queue", "MessagingDeliveryQueue")
    recoverer = _statements_of(synthesized, c.HANDLERS["Recoverer"])
    assert {"sqs:ReceiveMessage", "sqs:SendMessage"} <= _actions_on(recoverer, recovery)
    assert "sqs:SendMessage" in _actions_on(recoverer, delivery)
    api = _statements_of(synthesized, c.HANDLERS["Api"])
    assert "sqs:SendMessage" in _actions_on(api, recovery)
    assert "sqs:ReceiveMessage" not in _actions_on(api, recovery)
