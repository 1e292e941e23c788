"""The local stack: moto, provisioning, and the API behind the local API Gateway."""

from __future__ import annotations

import base64
import io
import json
import logging
import os
import socket
import threading
import time
from typing import Any
from urllib.parse import urlsplit

import boto3
import pytest
import requests
from aws_lambda_powertools import Logger
from werkzeug.test import Client

from oms_webhooks.api.tokens import revoke_token
from oms_webhooks.settings import get_settings
from oms_webhooks.storage.specs import table_specs
from oms_webhooks_local.authorizer_policy import policy_allows
from oms_webhooks_local.gateway import LocalApiGateway
from oms_webhooks_local.gateway_responses import ACCESS_DENIED_BODY, TOO_LARGE_BODY
from oms_webhooks_local.provision import provision
from oms_webhooks_local.stack import LocalStack
from tests.functional.helpers import Tenant, api, assert_unauthorized, subscribe

ALLOW_ALL = "arn:aws:execute-api:us-east-1:123456789012:local0api0/local/*/*"
#: The keys of every error body (DESIGN §3).
ERROR_KEYS = {"code", "detail", "errors"}


def raw_request(stack: LocalStack, data: bytes) -> tuple[int, dict[str, str], bytes]:
    """Send ``data`` as is to the stack's API; return status, headers and body of the answer.

    Fails the test when the connection closes without an answer.
    """
    address = urlsplit(stack.api_url)
    with socket.create_connection((address.hostname, address.port), timeout=10) as sock:
        sock.sendall(data)
        sock.shutdown(socket.SHUT_WR)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    assert answer, "the connection closed without an answer"
    head, _, body = answer.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in header_lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return int(status_line.split()[1]), headers, body


# -- over real HTTP, the real handlers ------------------------------------------


def test_request_without_token_is_401_json(stack: LocalStack) -> None:
    assert_unauthorized(api(stack).get("/whisperer/hooks/registry/"))


@pytest.mark.parametrize(
    "authorization",
    ["Token not-a-real-token-0123456789", "Bearer x", "Token", "Token " + "x" * 600],
)
def test_request_with_bad_token_is_401_json(stack: LocalStack, authorization: str) -> None:
    response = api(stack).get(
        "/whisperer/hooks/registry/", headers={"Authorization": authorization}
    )
    assert_unauthorized(response)


def test_dev_token_reads_the_registry(stack: LocalStack) -> None:
    response = api(stack, stack.dev_token).get("/whisperer/hooks/registry/")
    assert response.status_code == 200, response.text
    assert "package.created" in response.json()["event_types"]


def test_revoked_token_is_401_at_once(stack: LocalStack, tenant: Tenant) -> None:
    session = api(stack, tenant.token)
    assert session.get("/whisperer/hooks/registry/").status_code == 200
    revoke_token(tenant.token_id)
    assert_unauthorized(session.get("/whisperer/hooks/registry/"))


@pytest.mark.parametrize("path", ["/whisperer/openapi.json", "/whisperer/docs"])
def test_public_paths_need_no_token(stack: LocalStack, path: str) -> None:
    response = api(stack).get(path)
    assert response.status_code not in (401, 403, 500, 502), response.text


def test_unknown_path_with_a_token_is_404_from_the_app(stack: LocalStack, tenant: Tenant) -> None:
    response = api(stack, tenant.token).get("/whisperer/no/such/thing/")
    assert response.status_code == 404, response.text
    assert response.headers["Content-Type"].startswith("application/json")


def test_unknown_path_without_a_token_is_401(stack: LocalStack) -> None:
    assert_unauthorized(api(stack).get("/whisperer/no/such/thing/"))


def test_path_outside_the_api_is_api_gateways_403(stack: LocalStack, tenant: Tenant) -> None:
    response = api(stack, tenant.token).get("/elsewhere")
    assert response.status_code == 403
    assert response.json() == {"message": "Missing Authentication Token"}


def test_body_over_api_gateways_limit_is_413(stack: LocalStack, tenant: Tenant) -> None:
    body = b"{" + b" " * (10 * 1024 * 1024) + b"}"
    response = api(stack, tenant.token).post(
        "/whisperer/hooks/", data=body, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 413
    assert response.json() == TOO_LARGE_BODY
    assert set(response.json()) == ERROR_KEYS


def test_content_length_over_api_gateways_limit_is_413_at_once(stack: LocalStack) -> None:
    status, headers, body = raw_request(
        stack,
        b"POST /whisperer/hooks/ HTTP/1.1\r\nHost: x\r\n"
        b"Content-Type: application/json\r\nContent-Length: 99999999999\r\n\r\n{}",
    )
    assert status == 413
    assert headers["content-type"] == "application/json"
    assert json.loads(body) == TOO_LARGE_BODY
    assert set(json.loads(body)) == ERROR_KEYS


@pytest.mark.parametrize(
    ("request_bytes", "status", "code"),
    [
        (b"GET /whisperer/hooks/" + b"a" * 70000 + b"/ HTTP/1.1\r\nHost: x\r\n\r\n", 414, None),
        (b"GARBAGE\r\n\r\n", 400, "bad_request"),
        (b"GET /whisperer/hooks/ HTTP/9.9\r\nHost: x\r\n\r\n", 505, "http_version_not_supported"),
        (
            b"GET /whisperer/hooks/ HTTP/1.1\r\nHost: x\r\nX-Big: " + b"b" * 70000 + b"\r\n\r\n",
            431,
            "request_header_fields_too_large",
        ),
    ],
    ids=["request-line-too-long", "garbage", "http-9.9", "header-too-long"],
)
def test_malformed_requests_get_http_servers_answer_in_json(
    stack: LocalStack,
    capfd: pytest.CaptureFixture[str],
    request_bytes: bytes,
    status: int,
    code: str | None,
) -> None:
    # http.server refuses these before the gateway sees them: same statuses, JSON bodies.
    got, headers, body = raw_request(stack, request_bytes)
    assert got == status
    assert headers["content-type"] == "application/json"
    error = json.loads(body)
    assert set(error) == ERROR_KEYS and error["detail"] and error["errors"] == {}
    if code is not None:
        assert error["code"] == code
    assert "Traceback" not in capfd.readouterr().err
    # The server is still fine.
    assert api(stack, stack.dev_token).get("/whisperer/hooks/registry/").status_code == 200


@pytest.mark.parametrize(
    "request_bytes",
    [
        b"POST /whisperer/hooks/ HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"ZZZ\r\nabc\r\n0\r\n\r\n",
        b"POST /whisperer/hooks/ HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc",
    ],
    ids=["broken-chunked-encoding", "body-cut-short"],
)
def test_unreadable_body_is_400_json(
    stack: LocalStack, capfd: pytest.CaptureFixture[str], request_bytes: bytes
) -> None:
    status, headers, body = raw_request(stack, request_bytes)
    assert status == 400
    assert headers["content-type"] == "application/json"
    assert json.loads(body)["code"] == "bad_request"
    assert set(json.loads(body)) == ERROR_KEYS
    assert "Traceback" not in capfd.readouterr().err


def test_root_is_api_gateways_missing_authentication_token(stack: LocalStack) -> None:
    response = api(stack).get("/")
    assert response.status_code == 403
    assert response.json() == {"message": "Missing Authentication Token"}


def test_stack_environment(stack: LocalStack) -> None:
    assert os.environ["AWS_ENDPOINT_URL"] == stack.aws_endpoint_url
    assert os.environ["AWS_DEFAULT_REGION"] == os.environ["AWS_REGION"] == "us-east-1"
    assert stack.api_url.startswith("http://127.0.0.1:")
    assert stack.aws_endpoint_url.startswith("http://127.0.0.1:")
    assert get_settings().allow_private_targets is True


def test_provisioning_is_idempotent_and_follows_the_specs(stack: LocalStack) -> None:
    lines = provision(stack.aws_endpoint_url)
    assert lines and all(line.endswith(": exists") for line in lines)
    dynamodb = boto3.client("dynamodb", endpoint_url=stack.aws_endpoint_url)
    for spec in table_specs():
        table = dynamodb.describe_table(TableName=spec.name(get_settings()))["Table"]
        assert table["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
        keys = {k["KeyType"]: k["AttributeName"] for k in table["KeySchema"]}
        assert keys.get("HASH") == spec.hash_key[0]
        assert keys.get("RANGE") == (spec.range_key[0] if spec.range_key else None)
        ttl = dynamodb.describe_time_to_live(TableName=table["TableName"])
        if spec.ttl_attribute:
            assert ttl["TimeToLiveDescription"] == {
                "TimeToLiveStatus": "ENABLED",
                "AttributeName": spec.ttl_attribute,
            }
        indexes = {i["IndexName"]: i for i in table.get("GlobalSecondaryIndexes", [])}
        assert set(indexes) == {i.name for i in spec.indexes}
        for index in spec.indexes:
            projection = indexes[index.name]["Projection"]
            assert projection["ProjectionType"] == index.projection
            assert projection.get("NonKeyAttributes") == (
                None if index.non_key_attributes is None else list(index.non_key_attributes)
            )


# -- the event the handlers get (local gateway, echo handler) -------------------


def _echo(event: dict[str, Any], context: Any) -> dict[str, Any]:
    assert context.get_remaining_time_in_millis() > 0
    assert context.function_name and context.aws_request_id and context.invoked_function_arn
    return {"statusCode": 200, "body": json.dumps(event, ensure_ascii=False)}


def _allow(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return {
        "principalId": "tok_test",
        "policyDocument": {
            "Version": "2012-10-17",
            "Statement": [
                {"Action": "execute-api:Invoke", "Effect": "Allow", "Resource": [ALLOW_ALL]}
            ],
        },
        "context": {"tenant": "acme", "n": 3, "flag": True},
    }


def _client(**kwargs: Any) -> Client:
    kwargs.setdefault("api_handler", _echo)
    kwargs.setdefault("authorizer_handler", _allow)
    return Client(LocalApiGateway(**kwargs))


def test_proxy_event_has_the_rest_v1_shape() -> None:
    response = _client().get(
        "/whisperer/hooks/?event_type=package.created&a=1&a=2&empty=&caf%C3%A9=cr%C3%A8me",
        headers={"X-Custom": "v"},
    )
    assert response.status_code == 200
    event = response.get_json()
    assert event["resource"] == "/whisperer/{proxy+}"
    assert event["path"] == "/whisperer/hooks/"
    assert event["httpMethod"] == "GET"
    assert event["pathParameters"] == {"proxy": "hooks/"}
    assert event["stageVariables"] is None
    assert event["queryStringParameters"] == {
        "event_type": "package.created",
        "a": "2",
        "empty": "",
        "café": "crème",
    }
    assert event["multiValueQueryStringParameters"]["a"] == ["1", "2"]
    assert event["headers"]["X-Custom"] == "v"
    assert event["multiValueHeaders"]["X-Custom"] == ["v"]
    assert event["body"] is None and event["isBase64Encoded"] is False
    ctx = event["requestContext"]
    assert ctx["accountId"] == "123456789012"
    assert ctx["stage"] == "local" and ctx["apiId"] == "local0api0"
    assert ctx["path"] == "/local/whisperer/hooks/"
    assert ctx["resourcePath"] == "/whisperer/{proxy+}" and ctx["httpMethod"] == "GET"
    assert ctx["requestId"] and isinstance(ctx["requestTimeEpoch"], int)
    assert abs(ctx["requestTimeEpoch"] / 1000 - time.time()) < 60
    assert ctx["identity"]["sourceIp"]
    assert ctx["authorizer"] == {
        "tenant": "acme",
        "n": "3",
        "flag": "true",
        "principalId": "tok_test",
        "integrationLatency": 0,
    }


def test_no_query_string_is_none_like_api_gateway() -> None:
    event = _client().get("/whisperer/hooks/").get_json()
    assert event["queryStringParameters"] is None
    assert event["multiValueQueryStringParameters"] is None


def test_utf8_body_passes_as_text() -> None:
    body = '{"name": "Zürich ✓ 東京"}'
    event = _client().post("/whisperer/hooks/", data=body.encode()).get_json()
    assert event["body"] == body
    assert event["isBase64Encoded"] is False


def test_non_utf8_body_passes_as_base64() -> None:
    body = b"\xff\xfe\x00binary"
    event = _client().post("/whisperer/hooks/", data=body).get_json()
    assert event["isBase64Encoded"] is True
    assert base64.b64decode(event["body"]) == body


def test_authorizer_gets_a_request_event() -> None:
    seen: list[dict[str, Any]] = []

    def authorizer(event: dict[str, Any], context: Any) -> dict[str, Any]:
        seen.append(event)
        return _allow(event, context)

    _client(authorizer_handler=authorizer).delete(
        "/whisperer/hooks/abc/?x=1", headers={"Authorization": "Token t"}
    )
    (event,) = seen
    assert event["type"] == "REQUEST"
    assert event["methodArn"] == (
        "arn:aws:execute-api:us-east-1:123456789012:local0api0/local/DELETE/whisperer/hooks/abc/"
    )
    assert event["headers"]["Authorization"] == "Token t"
    assert event["queryStringParameters"] == {"x": "1"}
    assert event["requestContext"]["apiId"] == "local0api0"


def test_public_paths_skip_the_authorizer() -> None:
    def refuse(event: dict[str, Any], context: Any) -> dict[str, Any]:
        raise Exception("Unauthorized")

    client = _client(authorizer_handler=refuse)
    for path in ("/whisperer/openapi.json", "/whisperer/docs", "/whisperer/docs/x.css"):
        assert client.get(path).status_code == 200, path
    assert client.get("/whisperer/docsx").status_code == 401
    assert client.get("/whisperer/docs/../hooks/").status_code == 401
    assert client.get("/whisperer/docs/%2e%2e/hooks/").status_code == 401
    assert client.get("/whisperer/docs//").status_code == 401
    assert client.get("/whisperer/hooks/").status_code == 401


def test_real_authorizer_context_reaches_the_api_handler(stack: LocalStack, tenant: Tenant) -> None:
    response = _client(authorizer_handler=None).get(
        "/whisperer/hooks/", headers={"Authorization": f"Token {tenant.token}"}
    )
    authorizer = response.get_json()["requestContext"]["authorizer"]
    assert authorizer["tenant"] == tenant.name
    assert authorizer["principalId"] == tenant.token_id


def test_denying_policy_is_403() -> None:
    def deny(event: dict[str, Any], context: Any) -> dict[str, Any]:
        result = _allow(event, context)
        result["policyDocument"]["Statement"][0]["Effect"] = "Deny"
        return result

    response = _client(authorizer_handler=deny).get("/whisperer/hooks/")
    assert response.status_code == 403
    assert response.get_json() == ACCESS_DENIED_BODY
    assert set(response.get_json()) == ERROR_KEYS


def test_failing_authorizer_is_500() -> None:
    def broken(event: dict[str, Any], context: Any) -> dict[str, Any]:
        raise RuntimeError("table missing")

    assert _client(authorizer_handler=broken).get("/whisperer/hooks/").status_code == 500


def test_raising_handler_is_502() -> None:
    def boom(event: dict[str, Any], context: Any) -> dict[str, Any]:
        raise ValueError("bug")

    response = _client(api_handler=boom).get("/whisperer/hooks/")
    assert response.status_code == 502
    assert response.get_json() == {"message": "Internal server error"}


@pytest.mark.parametrize("result", [None, {"body": "x"}, {"statusCode": 200, "body": 3}])
def test_malformed_handler_result_is_502(result: Any) -> None:
    response = _client(api_handler=lambda e, c: result).get("/whisperer/hooks/")
    assert response.status_code == 502


def test_slow_handler_is_504() -> None:
    def slow(event: dict[str, Any], context: Any) -> dict[str, Any]:
        time.sleep(0.5)
        return {"statusCode": 200, "body": ""}

    response = _client(api_handler=slow, integration_timeout=0.05).get("/whisperer/hooks/")
    assert response.status_code == 504


def test_a_handler_past_its_504_holds_the_gateway_until_it_ends() -> None:
    release, ended = threading.Event(), threading.Event()

    def held(event: dict[str, Any], context: Any) -> dict[str, Any]:
        release.wait(60)
        ended.set()
        return {"statusCode": 200, "body": ""}

    gateway = LocalApiGateway(api_handler=held, authorizer_handler=_allow, integration_timeout=0.05)
    assert Client(gateway).get("/whisperer/hooks/").status_code == 504
    waiting = threading.Thread(target=gateway.wait_for_handler)
    waiting.start()
    waiting.join(0.5)
    assert waiting.is_alive() and not ended.is_set()  # the handler still runs
    release.set()
    waiting.join(60)
    assert not waiting.is_alive() and ended.is_set()


def test_handler_response_headers_and_base64_body() -> None:
    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        return {
            "statusCode": 201,
            "headers": {"Content-Type": "application/octet-stream", "X-One": "a"},
            "multiValueHeaders": {"Set-Cookie": ["a=1", "b=2"], "X-One": ["b"]},
            "body": base64.b64encode(b"\x00\xff").decode(),
            "isBase64Encoded": True,
        }

    response = _client(api_handler=handler).get("/whisperer/hooks/")
    assert response.status_code == 201
    assert response.data == b"\x00\xff"
    assert response.headers["Content-Type"] == "application/octet-stream"
    assert response.headers.getlist("Set-Cookie") == ["a=1", "b=2"]
    assert response.headers.getlist("X-One") == ["b"]


def test_body_limit_is_413() -> None:
    client = _client(max_payload_bytes=1024)
    assert client.post("/whisperer/hooks/", data=b"x" * 1024).status_code == 200
    response = client.post("/whisperer/hooks/", data=b"x" * 1025)
    assert response.status_code == 413
    assert response.get_json() == TOO_LARGE_BODY


def test_a_failure_inside_the_gateway_is_a_json_500() -> None:
    class Broken(LocalApiGateway):
        def proxy_event(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
            raise RuntimeError("bug")

    response = Client(Broken(api_handler=_echo, authorizer_handler=_allow)).get("/whisperer/hooks/")
    assert response.status_code == 500
    assert response.headers["Content-Type"] == "application/json"
    assert response.get_json() == {"message": "Internal server error"}


def test_each_handler_logs_with_its_own_context() -> None:
    stream = io.StringIO()
    log = Logger(
        service=f"test-{time.monotonic_ns()}", logger_handler=logging.StreamHandler(stream)
    )

    @log.inject_lambda_context(clear_state=True)
    def authorizer(event: dict[str, Any], context: Any) -> dict[str, Any]:
        log.info("authorizing")
        return _allow(event, context)

    @log.inject_lambda_context(clear_state=True)
    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        log.info("answering")
        return {"statusCode": 200, "body": ""}

    client = _client(api_handler=handler, authorizer_handler=authorizer)
    assert client.get("/whisperer/hooks/").status_code == 200
    lines = {line["message"]: line for line in map(json.loads, stream.getvalue().splitlines())}
    assert lines["authorizing"]["function_name"] == "oms-webhooks-authorizer"
    assert lines["answering"]["function_name"] == "oms-webhooks-api"


def test_policy_evaluation() -> None:
    arn = "arn:aws:execute-api:us-east-1:123456789012:api/local/GET/whisperer/hooks/"
    allow = {"Effect": "Allow", "Action": "execute-api:Invoke", "Resource": ALLOW_ALL}
    assert not policy_allows({"Statement": [allow]}, arn)  # another api id
    allow["Resource"] = "arn:aws:execute-api:us-east-1:123456789012:api/*"
    assert policy_allows({"Statement": [allow]}, arn)
    deny = {**allow, "Effect": "Deny", "Resource": [arn]}
    assert not policy_allows({"Statement": [allow, deny]}, arn)
    assert not policy_allows({"Statement": []}, arn)
    with pytest.raises(ValueError):
        policy_allows(None, arn)


def test_provision_restores_the_stack_after_a_moto_mock_reset(local_stack: LocalStack) -> None:
    """moto's in-process mocks share (and reset) the server's state; the fixture heals it."""
    from moto import mock_aws

    with mock_aws():
        pass  # resets every moto backend, the local stack's tables included
    broken = api(local_stack, local_stack.dev_token).get("/whisperer/hooks/registry/")
    assert broken.status_code == 500  # the authorizer found no tokens table
    local_stack.provision()
    response = api(local_stack, local_stack.dev_token).get("/whisperer/hooks/registry/")
    assert response.status_code == 200


def test_a_public_target_on_the_local_stack_logs_a_warning(
    client: requests.Session, caplog: pytest.LogCaptureFixture
) -> None:
    # GIVEN the local stack (private targets allowed): example.com's address, as a literal
    with caplog.at_level(logging.WARNING):
        sub = subscribe(client, event_type="package.created", target_url="http://93.184.215.14/")
        private = subscribe(client, event_type="shipment.created", target_url="http://10.1.2.3/")
        client.patch(
            f"/whisperer/hooks/{private['id']}/", json={"target_url": "http://8.8.8.8/hook"}
        )
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    # THEN it is accepted, with a warning line naming it (and the PATCH to a public one too)
    assert sub["target_url"] == "http://93.184.215.14/"
    assert any("93.184.215.14" in w and "public address" in w for w in warnings), warnings
    assert any("8.8.8.8" in w for w in warnings), warnings
    assert not any("10.1.2.3" in w for w in warnings)
