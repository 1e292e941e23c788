"""API Gateway's REST (v1) proxy integration as the local gateway speaks it: events in, results out.

:func:`proxy_event` builds the event API Gateway gives the api handler for a
request on the ``{proxy+}`` resource under ``/whisperer`` (or on a public
path), :func:`authorizer_event` the REQUEST authorizer's event for it, and
:func:`http_response` turns the handler's proxy result back into HTTP (or
raises: API Gateway answers 502 then). :func:`is_public` says which paths skip
the authorizer (DESIGN §3). Plain translation: nothing here runs a handler;
:class:`oms_webhooks_local.gateway.LocalApiGateway` does.
"""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from typing import Any

from werkzeug.wrappers import Request, Response

from oms_webhooks import names
from oms_webhooks_local.lambda_context import ACCOUNT_ID, REGION

#: The API's base path and its proxy resource.
BASE_PATH = names.API_BASE_PATH
PROXY_RESOURCE = f"{BASE_PATH}/{{proxy+}}"
#: Paths served without a token (DESIGN §3); sub-paths of ``/whisperer/docs`` too.
PUBLIC_PATHS: tuple[str, ...] = tuple(f"{BASE_PATH}/{path}" for path in names.PUBLIC_PATHS)


def is_public(path: str) -> bool:
    """Whether ``path`` is served without a token (openapi.json, docs and its sub-paths).

    A sub-path with a ``.`` or ``..`` segment (or an empty one) is never
    public: ``/whisperer/docs/../hooks/`` must not skip the authorizer.
    """
    if path in PUBLIC_PATHS:
        return True
    prefix = f"{BASE_PATH}/docs/"
    if not path.startswith(prefix):
        return False
    segments = path[len(prefix) :].split("/")
    return all(seg not in ("", ".", "..") for seg in segments)


def method_arn(method: str, path: str, *, api_id: str, stage: str) -> str:
    """``arn:aws:execute-api:us-east-1:123456789012:<apiId>/<stage>/<METHOD>/<path>``."""
    return f"arn:aws:execute-api:{REGION}:{ACCOUNT_ID}:{api_id}/{stage}/{method}/{path.lstrip('/')}"


def proxy_event(
    request: Request, body: bytes, request_id: str, *, stage: str, api_id: str
) -> dict[str, Any]:
    """The REST (v1) proxy event API Gateway builds for ``request`` on the proxy resource.

    ``body`` is the raw request body: a str when it is UTF-8, else base64
    with ``isBase64Encoded`` true; None when empty.
    """
    path = request.path
    now = datetime.now(UTC)
    multi_headers: dict[str, list[str]] = {}
    for name, value in request.headers.items():
        multi_headers.setdefault(name, []).append(value)
    source_ip = request.remote_addr or "127.0.0.1"
    forwarded = {
        "X-Forwarded-For": [source_ip],
        "X-Forwarded-Proto": [request.scheme],
        "X-Forwarded-Port": [str(request.server[1]) if request.server else "80"],
    }
    for name, values in forwarded.items():
        multi_headers.setdefault(name, values)
    headers = {name: values[-1] for name, values in multi_headers.items()}
    multi_query = {k: request.args.getlist(k) for k in request.args}
    text: str | None
    is_b64 = False
    if not body:
        text = None
    else:
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            text = base64.b64encode(body).decode("ascii")
            is_b64 = True
    if is_public(path):
        resource = path if path in PUBLIC_PATHS else f"{BASE_PATH}/docs/{{proxy+}}"
        proxy = path[len(f"{BASE_PATH}/docs/") :] if resource != path else None
    else:
        resource = PROXY_RESOURCE
        proxy = path[len(BASE_PATH) + 1 :]
    return {
        "resource": resource,
        "path": path,
        "httpMethod": request.method,
        "headers": headers or None,
        "multiValueHeaders": multi_headers or None,
        "queryStringParameters": {k: v[-1] for k, v in multi_query.items()} or None,
        "multiValueQueryStringParameters": multi_query or None,
        "pathParameters": {"proxy": proxy} if proxy is not None else None,
        "stageVariables": None,
        "requestContext": {
            "resourceId": "local0",
            "resourcePath": resource,
            "httpMethod": request.method,
            "extendedRequestId": request_id,
            "requestTime": now.strftime("%d/%b/%Y:%H:%M:%S +0000"),
            "path": f"/{stage}{path}",
            "accountId": ACCOUNT_ID,
            "protocol": request.environ.get("SERVER_PROTOCOL", "HTTP/1.1"),
            "stage": stage,
            "domainPrefix": request.host.split(":")[0].split(".")[0],
            "requestTimeEpoch": int(now.timestamp() * 1000),
            "requestId": request_id,
            "identity": {
                "cognitoIdentityPoolId": None,
                "accountId": None,
                "cognitoIdentityId": None,
                "caller": None,
                "sourceIp": source_ip,
                "principalOrgId": None,
                "accessKey": None,
                "cognitoAuthenticationType": None,
                "cognitoAuthenticationProvider": None,
                "userArn": None,
                "userAgent": request.headers.get("User-Agent"),
                "user": None,
                "apiKey": None,
                "apiKeyId": None,
                "clientCert": None,
            },
            "domainName": request.host,
            "apiId": api_id,
        },
        "body": text,
        "isBase64Encoded": is_b64,
    }


def authorizer_event(event: dict[str, Any], *, api_id: str, stage: str) -> dict[str, Any]:
    """The REQUEST authorizer event for the proxy ``event``."""
    return {
        "type": "REQUEST",
        "methodArn": method_arn(event["httpMethod"], event["path"], api_id=api_id, stage=stage),
        "resource": event["resource"],
        "path": event["path"],
        "httpMethod": event["httpMethod"],
        "headers": event["headers"],
        "multiValueHeaders": event["multiValueHeaders"],
        "queryStringParameters": event["queryStringParameters"],
        "multiValueQueryStringParameters": event["multiValueQueryStringParameters"],
        "pathParameters": event["pathParameters"],
        "stageVariables": event["stageVariables"],
        "requestContext": dict(event["requestContext"]),
    }


def http_response(result: Any, request_id: str) -> Response:
    """Turn a Lambda proxy result into an HTTP response.

    Raises:
        ValueError, TypeError, KeyError: ``result`` is not a valid proxy
            result (API Gateway answers 502 then).
    """
    if not isinstance(result, dict):
        raise ValueError("proxy result is not an object")
    status = int(result["statusCode"])
    if not 100 <= status <= 599:
        raise ValueError(f"bad statusCode {status}")
    body = result.get("body")
    if body is None:
        data = b""
    elif not isinstance(body, str):
        raise ValueError("proxy result body is not a string")
    elif result.get("isBase64Encoded"):
        data = base64.b64decode(body, validate=True)
    else:
        data = body.encode("utf-8")
    response = Response(data, status=status)
    del response.headers["Content-Type"]
    multi = {k: [str(v) for v in vs] for k, vs in (result.get("multiValueHeaders") or {}).items()}
    lowered = {k.lower() for k in multi}
    for name, value in (result.get("headers") or {}).items():
        if name.lower() not in lowered:
            multi[name] = [str(value)]
    for name, values in multi.items():
        for value in values:
            response.headers.add(name, value)
    if "content-type" not in {k.lower() for k in multi}:
        response.headers["Content-Type"] = "application/json"
    response.headers["x-amzn-RequestId"] = request_id
    return response
