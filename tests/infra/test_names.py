"""Shared names and AWS limits: the CDK app and the local gateway take them from one module.

``oms_webhooks.names`` and ``oms_webhooks.limits`` are the one home of each
(issue 18); a copy spelled again in ``infra/`` or the local gateway would pass
the other tests as long as the values agree, and drift the day one changes.
So these check identity (``is``) where the value is an object, and derivation
where a consumer reshapes it.
"""

from __future__ import annotations

import pytest

from oms_webhooks import limits, names
from oms_webhooks_infra import api
from oms_webhooks_infra import constants as c


@pytest.mark.parametrize(
    ("infra_name", "shared"),
    [
        ("SERVICE_NAME", "SERVICE_NAME"),
        ("API_PREFIX", "API_PREFIX"),
        ("PUBLIC_PATHS", "PUBLIC_PATHS"),
        ("PUBLIC_TREES", "PUBLIC_TREES"),
        ("AUTHORIZATION_HEADER", "AUTHORIZATION_HEADER"),
        ("UNAUTHORIZED_BODY", "UNAUTHORIZED_BODY"),
        ("ACCESS_DENIED_BODY", "ACCESS_DENIED_BODY"),
        ("HANDLERS", "HANDLERS"),
        ("DEFAULT_METRICS_NAMESPACE", "METRICS_NAMESPACE"),
        ("METRIC_DELIVERY_ATTEMPTED", "METRIC_DELIVERY_ATTEMPTED"),
        ("METRIC_DELIVERY_FAILED", "METRIC_DELIVERY_FAILED"),
        ("METRIC_OPERATIONAL_EVENT_NOT_PUBLISHED", "METRIC_OPERATIONAL_EVENT_NOT_PUBLISHED"),
    ],
)
def test_infra_constants_are_the_shared_names(infra_name: str, shared: str) -> None:
    assert getattr(c, infra_name) is getattr(names, shared)


def test_infra_limits_are_aws_limits() -> None:
    assert c.API_TIMEOUT_SECONDS == limits.API_GATEWAY_INTEGRATION_TIMEOUT_SECONDS
    assert c.VISIBILITY_TIMEOUT_FACTOR == limits.LAMBDA_SQS_VISIBILITY_FACTOR
    assert api.MAX_PAYLOAD_BYTES == limits.API_GATEWAY_MAX_PAYLOAD_BYTES
    assert api.GATEWAY_RESPONSES["UNAUTHORIZED"][1] is names.UNAUTHORIZED_BODY
    assert api.GATEWAY_RESPONSES["ACCESS_DENIED"][1] is names.ACCESS_DENIED_BODY


def test_the_local_gateway_takes_its_values_from_names() -> None:
    from oms_webhooks_local import gateway, gateway_events, gateway_responses, lambda_context

    assert gateway_events.BASE_PATH == names.API_BASE_PATH == f"/{names.API_PREFIX}"
    assert (
        tuple(f"{names.API_BASE_PATH}/{p}" for p in names.PUBLIC_PATHS)
        == gateway_events.PUBLIC_PATHS
    )
    assert gateway_responses.UNAUTHORIZED_BODY is names.UNAUTHORIZED_BODY
    assert gateway_responses.ACCESS_DENIED_BODY is names.ACCESS_DENIED_BODY
    assert (lambda_context.ACCOUNT_ID, lambda_context.REGION) == (
        names.LOCAL_ACCOUNT_ID,
        names.LOCAL_REGION,
    )
    assert gateway_responses.MAX_PAYLOAD_BYTES == limits.API_GATEWAY_MAX_PAYLOAD_BYTES
    assert gateway.INTEGRATION_TIMEOUT_SECONDS == limits.API_GATEWAY_INTEGRATION_TIMEOUT_SECONDS


def test_the_local_stack_takes_its_ports_from_names() -> None:
    from oms_webhooks_local import stack

    assert (stack.DEFAULT_API_PORT, stack.DEFAULT_AWS_PORT) == (
        names.DEFAULT_API_PORT,
        names.DEFAULT_AWS_PORT,
    )


def test_entry_points_of_the_local_stack_match_the_cdk_handlers() -> None:
    # The local stack imports "module:attr"; CDK takes "module.attr": same function.
    for function, dotted in names.HANDLERS.items():
        module, attribute = names.entry_point(function).split(":")
        assert f"{module}.{attribute}" == dotted


def test_the_local_stack_and_the_functions_take_the_service_name_and_ports_from_names() -> None:
    import inspect

    from click.core import Option

    from oms_webhooks import resources, settings
    from oms_webhooks.observability import service_logger
    from oms_webhooks_local import lanes, receiver
    from oms_webhooks_local.cli import receiver as receiver_command

    service = names.SERVICE_NAME
    assert service_logger().service == service
    assert (
        f"{service}-router",
        f"{service}-dispatcher",
        f"{service}-recoverer",
    ) == (lanes.ROUTER_FUNCTION, lanes.DISPATCHER_FUNCTION, lanes.RECOVERER_FUNCTION)
    assert f"{service}-ingress" == resources.RULE_NAME
    fields = settings.Settings.model_fields
    assert fields["deliveries_table"].default is names.DEFAULT_DELIVERIES_TABLE
    assert fields["bus_name"].default is names.DEFAULT_BUS_NAME
    port = inspect.signature(receiver.make_server).parameters["port"].default
    (option,) = [
        p for p in receiver_command.receiver.params if isinstance(p, Option) and p.name == "port"
    ]
    assert port == option.default == names.DEFAULT_RECEIVER_PORT
