"""REST API: authorizer on every method but the public docs, JSON refusals, stage limits."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

from aws_cdk.assertions import Match

from oms_webhooks_infra import api
from oms_webhooks_infra import constants as c
from tests.infra.conftest import Synthesized, silence_jsii_node_warnings


def _paths(synthesized: Synthesized) -> dict[str, str]:
    """``/whisperer/{proxy+}``-style full path by ApiGateway::Resource logical id."""
    resources = synthesized.resources("AWS::ApiGateway::Resource")

    def path(logical_id: str) -> str:
        props = resources[logical_id]["Properties"]
        parent = props["ParentId"]
        prefix = path(parent["Ref"]) if "Ref" in parent else ""
        return f"{prefix}/{props['PathPart']}"

    return {logical_id: path(logical_id) for logical_id in resources}


def _methods(synthesized: Synthesized) -> dict[tuple[str, str], dict[str, Any]]:
    paths = _paths(synthesized)
    return {
        (paths[m["Properties"]["ResourceId"]["Ref"]], m["Properties"]["HttpMethod"]): m[
            "Properties"
        ]
        for m in synthesized.resources("AWS::ApiGateway::Method").values()
    }


def test_routes_are_the_proxy_and_the_public_docs(synthesized: Synthesized) -> None:
    assert set(_methods(synthesized)) == {
        ("/whisperer/{proxy+}", "ANY"),
        ("/whisperer/openapi.json", "GET"),
        ("/whisperer/docs", "GET"),
        ("/whisperer/docs/{proxy+}", "GET"),
    }


def test_every_method_but_the_public_docs_has_the_authorizer(synthesized: Synthesized) -> None:
    (authorizer_id,) = synthesized.resources("AWS::ApiGateway::Authorizer")
    for (path, _), props in _methods(synthesized).items():
        relative = path.removeprefix("/whisperer/")
        if relative in c.PUBLIC_PATHS or relative.split("/")[0] in c.PUBLIC_TREES:
            assert props["AuthorizationType"] == "NONE"
        else:
            assert props["AuthorizationType"] == "CUSTOM"
            assert props["AuthorizerId"] == {"Ref": authorizer_id}


def test_methods_proxy_to_the_api_function(synthesized: Synthesized) -> None:
    for props in _methods(synthesized).values():
        assert props["Integration"]["Type"] == "AWS_PROXY"
        assert "FunctionsApi" in json.dumps(props["Integration"]["Uri"])


def test_authorizer_is_request_on_the_authorization_header_cached_a_minute_at_most(
    synthesized: Synthesized,
) -> None:
    (authorizer,) = synthesized.resources("AWS::ApiGateway::Authorizer").values()
    props = authorizer["Properties"]
    assert props["Type"] == "REQUEST"
    assert props["IdentitySource"] == "method.request.header.Authorization"
    assert 0 < props["AuthorizerResultTtlInSeconds"] <= 60
    assert "FunctionsAuthorizer" in json.dumps(props["AuthorizerUri"])


def _gateway_responses(synthesized: Synthesized) -> dict[str, dict[str, Any]]:
    return {
        r["Properties"]["ResponseType"]: r["Properties"]
        for r in synthesized.resources("AWS::ApiGateway::GatewayResponse").values()
    }


def test_gateway_refusals_are_json_in_the_api_error_shape(synthesized: Synthesized) -> None:
    responses = _gateway_responses(synthesized)
    for kind, status, code in (
        ("UNAUTHORIZED", "401", "not_authenticated"),
        ("ACCESS_DENIED", "403", "permission_denied"),
        ("REQUEST_TOO_LARGE", "413", "request_too_large"),
    ):
        body = json.loads(responses[kind]["ResponseTemplates"]["application/json"])
        assert responses[kind]["StatusCode"] == status
        assert set(body) == {"code", "detail", "errors"}  # DESIGN §3
        assert body["code"] == code
        assert body["detail"]
        assert body["errors"] == {}
        assert (
            responses[kind]["ResponseParameters"]["gatewayresponse.header.Content-Type"]
            == "'application/json'"
        )


def test_gateway_refusals_are_the_local_gateways(synthesized: Synthesized) -> None:
    # The local stack's API Gateway stand-in answers its refusals with the same bodies.
    from oms_webhooks_local import gateway_responses

    responses = _gateway_responses(synthesized)
    for kind, local_body in (
        ("UNAUTHORIZED", gateway_responses.UNAUTHORIZED_BODY),
        ("ACCESS_DENIED", gateway_responses.ACCESS_DENIED_BODY),
        ("REQUEST_TOO_LARGE", gateway_responses.TOO_LARGE_BODY),
    ):
        assert json.loads(responses[kind]["ResponseTemplates"]["application/json"]) == local_body
    assert gateway_responses.MAX_PAYLOAD_BYTES == api.MAX_PAYLOAD_BYTES


def test_stage_is_throttled_access_logged_and_traced(synthesized: Synthesized) -> None:
    synthesized.template.has_resource_properties(
        "AWS::ApiGateway::Stage",
        {
            "AccessLogSetting": {"DestinationArn": Match.any_value(), "Format": Match.any_value()},
            "MethodSettings": Match.array_with(
                [
                    Match.object_like(
                        {
                            "ThrottlingRateLimit": c.THROTTLING_RATE_LIMIT,
                            "ThrottlingBurstLimit": c.THROTTLING_BURST_LIMIT,
                            "LoggingLevel": "ERROR",
                        }
                    )
                ]
            ),
            "TracingEnabled": True,
        },
    )
    synthesized.template.has_output("ApiUrl", {"Value": Match.any_value()})


def test_public_paths_are_the_local_gateways() -> None:
    # The local stack's API Gateway stand-in serves the same public paths.
    from oms_webhooks_local import gateway_events

    assert {f"/{c.API_PREFIX}/{p}" for p in c.PUBLIC_PATHS} == set(gateway_events.PUBLIC_PATHS)
    assert f"/{c.API_PREFIX}" == gateway_events.BASE_PATH


def test_jsii_node_version_banners_are_silenced() -> None:
    # conftest sets the variables before aws_cdk starts jsii's runtime (in this process) ...
    assert os.environ["JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION"]
    assert os.environ["JSII_SILENCE_WARNING_UNTESTED_NODE_VERSION"]
    # ... and with them a new runtime prints no banner about the Node version.
    env = {k: v for k, v in os.environ.items() if not k.startswith("JSII_SILENCE_WARNING_")}
    silence_jsii_node_warnings(env)
    result = subprocess.run(
        [sys.executable, "-c", "import aws_cdk"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "!!!!" not in result.stderr and "node" not in result.stderr.lower(), result.stderr
