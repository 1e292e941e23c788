"""A local API Gateway: WSGI requests → REST (v1) proxy events → the real Lambda handlers.

:class:`LocalApiGateway` is a WSGI application that behaves like the
deployed REST API (DESIGN §3): a ``{proxy+}`` resource under ``/whisperer``
sends every path to the api handler; every path except the public ones
(:data:`PUBLIC_PATHS`) first goes through the REQUEST authorizer. Its
answers imitate API Gateway's:

* authorizer raised ``Exception("Unauthorized")`` → 401, the UNAUTHORIZED
  Gateway Response with a JSON body; a policy that does not allow the method
  → 403 (ACCESS_DENIED); any other authorizer failure → 500 (AUTHORIZER_FAILURE);
* the api handler raised, or returned something that is not a proxy
  response → 502 ``{"message": "Internal server error"}``; it ran longer than
  the integration timeout (29 s) → 504;
* a body over the 10 MB payload limit → 413; a path outside the API's
  resources → 403 ``{"message": "Missing Authentication Token"}``;
* a body that cannot be read (broken chunked encoding, shorter than its
  ``Content-Length``, not all there by the request's read deadline) → 400;
  anything else going wrong in the gateway itself → 500
  ``{"message": "Internal server error"}`` (never an HTML page).

The gateway's own refusals (401, 403, 413, 400) have the API's error shape
``{"code", "detail", "errors"}`` (DESIGN §3); the 401, 403 and 413 bodies are
the deployed API's Gateway Responses (``infra/oms_webhooks_infra/api.py``, checked
by ``tests/infra/test_api.py``). The other bodies (403 Missing Authentication
Token, 500, 502, 504) are API Gateway's defaults, as deployed.

Every handler runs inside :func:`invocation`, so that its log lines name its
own function even though all functions share one process here (on Lambda,
each has its own): see :class:`InvocationLogFilter`.

The authorizer's result is not cached here (API Gateway caches it up to 60 s:
the documented revocation delay); locally a revoked token is refused at once.
"""

from __future__ import annotations

import base64
import contextlib
import json
import logging
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

from aws_lambda_powertools.logging.formatter import BasePowertoolsFormatter
from aws_lambda_powertools.utilities.typing import LambdaContext
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge
from werkzeug.wrappers import Request, Response

from oms_webhooks import aws_call_log, limits, names

logger = logging.getLogger(__name__)

#: A Lambda entry point: ``handler(event, context) -> result``.
Handler = Callable[[dict[str, Any], LambdaContext], Any]

#: Moto's default account, which the local stack always uses (DESIGN §6).
ACCOUNT_ID = names.LOCAL_ACCOUNT_ID
REGION = names.LOCAL_REGION
#: The API's base path and its proxy resource.
BASE_PATH = names.API_BASE_PATH
PROXY_RESOURCE = f"{BASE_PATH}/{{proxy+}}"
#: Paths served without a token (DESIGN §3); sub-paths of ``/whisperer/docs`` too.
PUBLIC_PATHS: tuple[str, ...] = tuple(f"{BASE_PATH}/{path}" for path in names.PUBLIC_PATHS)
#: API Gateway's payload limit (10 MB) and REST integration timeout (29 s).
MAX_PAYLOAD_BYTES = limits.API_GATEWAY_MAX_PAYLOAD_BYTES
INTEGRATION_TIMEOUT_SECONDS = float(limits.API_GATEWAY_INTEGRATION_TIMEOUT_SECONDS)

#: The UNAUTHORIZED (401), ACCESS_DENIED (403) and REQUEST_TOO_LARGE (413)
#: Gateway Responses: the same bodies as the deployed API's
#: (``infra/oms_webhooks_infra/api.py``), in the API's error shape (DESIGN §3).
UNAUTHORIZED_BODY: dict[str, Any] = names.UNAUTHORIZED_BODY
ACCESS_DENIED_BODY: dict[str, Any] = names.ACCESS_DENIED_BODY
TOO_LARGE_BODY: dict[str, Any] = {
    "code": "request_too_large",
    "detail": f"The request is larger than API Gateway's {MAX_PAYLOAD_BYTES} byte limit.",
    "errors": {},
}
#: A request whose body cannot be read (broken chunked encoding, cut short).
BAD_REQUEST_BODY: dict[str, Any] = {
    "code": "bad_request",
    "detail": "The request body could not be read.",
    "errors": {},
}
INTERNAL_ERROR_BODY = {"message": "Internal server error"}
AUTHORIZER_FAILURE_BODY: dict[str, Any] = {"message": None}
TIMEOUT_BODY = {"message": "Endpoint request timed out"}
MISSING_TOKEN_BODY = {"message": "Missing Authentication Token"}


class FakeLambdaContext(LambdaContext):
    """The Lambda context object handed to a handler: names, memory and a deadline.

    Args:
        function_name: the function's name (also in its ARN).
        timeout_seconds: the invocation's time budget; ``get_remaining_time_in_millis``
            counts down from it.
        memory_limit_in_mb: the configured memory.
    """

    def __init__(
        self, function_name: str, *, timeout_seconds: float = 30.0, memory_limit_in_mb: int = 256
    ) -> None:
        self._function_name = function_name
        self._function_version = "$LATEST"
        self._invoked_function_arn = (
            f"arn:aws:lambda:{REGION}:{ACCOUNT_ID}:function:{function_name}"
        )
        self._memory_limit_in_mb = memory_limit_in_mb
        self._aws_request_id = str(uuid.uuid4())
        self._log_group_name = f"/aws/lambda/{function_name}"
        self._log_stream_name = f"{datetime.now(UTC):%Y/%m/%d}/[$LATEST]{uuid.uuid4().hex}"
        self._deadline = time.monotonic() + timeout_seconds

    def get_remaining_time_in_millis(self) -> int:  # type: ignore[override]
        """Milliseconds left before the invocation's deadline (≥ 0)."""
        return max(0, int((self._deadline - time.monotonic()) * 1000))


#: The Lambda context of the invocation running in this thread (see :func:`invocation`).
_CURRENT_CONTEXT: ContextVar[LambdaContext | None] = ContextVar(
    "oms_webhooks_local_lambda_context", default=None
)


class InvocationLogFilter(logging.Filter):
    """Tags each log record with the context of the invocation running in its thread.

    Powertools' ``inject_lambda_context`` stores ``function_name``,
    ``function_arn``, ``function_memory_size`` and ``function_request_id`` in
    the formatter, which every ``Logger`` of one service shares. On Lambda each
    function has its own process, so that is right there; on the local stack
    the router, dispatcher, authorizer and api handlers run at once in threads
    of one process, and each invocation would overwrite the others' keys
    (router lines tagged ``oms-webhooks-dispatcher``). Set as record
    attributes, these keys win over the formatter's (Powertools adds a
    record's extra attributes last), per thread.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        """Add the current invocation's keys to ``record`` (if one runs here); keep it."""
        context = _CURRENT_CONTEXT.get()
        if context is not None:
            record.function_name = context.function_name
            record.function_arn = context.invoked_function_arn
            record.function_memory_size = context.memory_limit_in_mb
            record.function_request_id = context.aws_request_id
        return True


#: The one filter :func:`install_invocation_log_filter` adds to Powertools' handlers.
INVOCATION_LOG_FILTER = InvocationLogFilter()


def install_invocation_log_filter() -> None:
    """Add :data:`INVOCATION_LOG_FILTER` to every Powertools log handler (idempotent)."""
    loggers = [logging.getLogger()]
    loggers += [
        candidate
        for candidate in list(logging.Logger.manager.loggerDict.values())
        if isinstance(candidate, logging.Logger)
    ]
    for candidate in loggers:
        for log_handler in list(candidate.handlers):
            if isinstance(log_handler.formatter, BasePowertoolsFormatter) and (
                INVOCATION_LOG_FILTER not in log_handler.filters
            ):
                log_handler.addFilter(INVOCATION_LOG_FILTER)


@contextlib.contextmanager
def invocation(context: LambdaContext) -> Iterator[LambdaContext]:
    """Run one Lambda invocation with ``context`` in this thread: its log lines name it.

    Installs :class:`InvocationLogFilter` on the Powertools log handlers first
    (at every invocation, so that handlers created since the last are covered),
    and attributes the AWS calls of the block to the function (benchmarks:
    :mod:`oms_webhooks.aws_call_log`).
    """
    install_invocation_log_filter()
    token = _CURRENT_CONTEXT.set(context)
    try:
        with aws_call_log.function_scope(context.function_name):
            yield context
    finally:
        _CURRENT_CONTEXT.reset(token)


def _json_response(status: int, body: Any, request_id: str) -> Response:
    response = Response(
        json.dumps(body), status=status, content_type="application/json", headers=None
    )
    response.headers["x-amzn-RequestId"] = request_id
    if status in (401, 403):
        response.headers["x-amzn-ErrorType"] = (
            "UnauthorizedException" if status == 401 else "AccessDeniedException"
        )
    return response


def _arn_pattern(resource: str) -> re.Pattern[str]:
    """An IAM resource pattern (``*`` and ``?`` wildcards) as a regular expression."""
    parts = (".*" if c == "*" else "." if c == "?" else re.escape(c) for c in resource)
    return re.compile("".join(parts), re.DOTALL)


def policy_allows(policy: Any, method_arn: str) -> bool:
    """Whether an authorizer's IAM policy document allows ``execute-api:Invoke`` on ``method_arn``.

    An explicit Deny wins; otherwise an Allow is needed (IAM's evaluation).
    A malformed document raises ``ValueError``.
    """
    if not isinstance(policy, dict) or not isinstance(policy.get("Statement"), list):
        raise ValueError("policyDocument without a Statement list")
    allowed = False
    for statement in policy["Statement"]:
        actions = statement.get("Action", [])
        actions = [actions] if isinstance(actions, str) else actions
        if not any(_arn_pattern(a).fullmatch("execute-api:Invoke") for a in actions):
            continue
        resources = statement.get("Resource", [])
        resources = [resources] if isinstance(resources, str) else resources
        if not any(_arn_pattern(r).fullmatch(method_arn) for r in resources):
            continue
        effect = statement.get("Effect")
        if effect == "Deny":
            return False
        if effect == "Allow":
            allowed = True
    return allowed


def _stringify(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | int | float):
        return str(value)
    raise ValueError(f"authorizer context values must be scalars, got {type(value).__name__}")


class LocalApiGateway:
    """WSGI app: each request → API Gateway REST proxy event → authorizer + api handler.

    Args:
        api_handler: the api Lambda's entry point; default
            :func:`oms_webhooks.handlers.api.handler`.
        authorizer_handler: the REQUEST authorizer's entry point; default
            :func:`oms_webhooks.handlers.authorizer.handler`.
        stage: the stage name (in ``requestContext`` and the method ARN).
        api_id: the REST API id.
        max_payload_bytes: largest request body, in bytes (else 413).
        integration_timeout: seconds the api handler may run (else 504).
    """

    def __init__(
        self,
        api_handler: Handler | None = None,
        authorizer_handler: Handler | None = None,
        *,
        stage: str = "local",
        api_id: str = "local0api0",
        max_payload_bytes: int = MAX_PAYLOAD_BYTES,
        integration_timeout: float = INTEGRATION_TIMEOUT_SECONDS,
    ) -> None:
        if api_handler is None:
            from oms_webhooks.handlers import api

            api_handler = api.handler
        if authorizer_handler is None:
            from oms_webhooks.handlers import authorizer

            authorizer_handler = authorizer.handler
        self.api_handler: Handler = api_handler
        self.authorizer_handler: Handler = authorizer_handler
        self._api_lock = threading.Lock()
        self.stage = stage
        self.api_id = api_id
        self.max_payload_bytes = max_payload_bytes
        self.integration_timeout = integration_timeout

    # -- WSGI ---------------------------------------------------------------

    def __call__(
        self, environ: dict[str, Any], start_response: Callable[..., Any]
    ) -> Iterable[bytes]:
        """The WSGI entry point."""
        request = Request(environ)
        request.max_content_length = self.max_payload_bytes
        try:
            response = self.handle(request)
        except Exception:  # never werkzeug's HTML error page
            logger.exception("local gateway failed (answers 500)")
            response = _json_response(500, INTERNAL_ERROR_BODY, str(uuid.uuid4()))
        return response(environ, start_response)

    def handle(self, request: Request) -> Response:
        """Answer one request as API Gateway would (see the module docstring)."""
        request_id = str(uuid.uuid4())
        path = request.path
        if not path.startswith(BASE_PATH + "/") or path == BASE_PATH + "/":
            return _json_response(403, MISSING_TOKEN_BODY, request_id)
        try:
            body = request.get_data(cache=True)
        except RequestEntityTooLarge:
            return _json_response(413, TOO_LARGE_BODY, request_id)
        except (HTTPException, OSError):  # ClientDisconnected, or the read deadline passed
            return _json_response(400, BAD_REQUEST_BODY, request_id)
        if len(body) > self.max_payload_bytes:  # pragma: no cover - werkzeug enforces it
            return _json_response(413, TOO_LARGE_BODY, request_id)

        event = self.proxy_event(request, body, request_id)
        if not self.is_public(path):
            denied = self._authorize(event)
            if isinstance(denied, Response):
                return denied
        return self._invoke_api(event, request_id)

    # -- events -------------------------------------------------------------

    @staticmethod
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

    def method_arn(self, method: str, path: str) -> str:
        """``arn:aws:execute-api:us-east-1:123456789012:<apiId>/<stage>/<METHOD>/<path>``."""
        return (
            f"arn:aws:execute-api:{REGION}:{ACCOUNT_ID}:{self.api_id}/{self.stage}/"
            f"{method}/{path.lstrip('/')}"
        )

    def proxy_event(self, request: Request, body: bytes, request_id: str) -> dict[str, Any]:
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
        if self.is_public(path):
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
                "path": f"/{self.stage}{path}",
                "accountId": ACCOUNT_ID,
                "protocol": request.environ.get("SERVER_PROTOCOL", "HTTP/1.1"),
                "stage": self.stage,
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
                "apiId": self.api_id,
            },
            "body": text,
            "isBase64Encoded": is_b64,
        }

    def authorizer_event(self, event: dict[str, Any]) -> dict[str, Any]:
        """The REQUEST authorizer event for the proxy ``event``."""
        return {
            "type": "REQUEST",
            "methodArn": self.method_arn(event["httpMethod"], event["path"]),
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

    # -- invocations --------------------------------------------------------

    def _authorize(self, event: dict[str, Any]) -> Response | None:
        """Run the authorizer; fill ``requestContext.authorizer`` or return the refusal."""
        request_id = event["requestContext"]["requestId"]
        auth_event = self.authorizer_event(event)
        context = FakeLambdaContext("oms-webhooks-authorizer", timeout_seconds=10.0)
        try:
            with invocation(context):
                result = self.authorizer_handler(auth_event, context)
        except Exception as exc:
            if str(exc) == "Unauthorized":
                return _json_response(401, UNAUTHORIZED_BODY, request_id)
            logger.exception("authorizer failed (API Gateway answers 500)")
            return _json_response(500, AUTHORIZER_FAILURE_BODY, request_id)
        try:
            if not isinstance(result, dict) or "principalId" not in result:
                raise ValueError("authorizer result without principalId")
            allowed = policy_allows(result.get("policyDocument"), auth_event["methodArn"])
            authorizer = {k: _stringify(v) for k, v in (result.get("context") or {}).items()}
        except (ValueError, AttributeError, TypeError):
            logger.exception("malformed authorizer result (API Gateway answers 500)")
            return _json_response(500, AUTHORIZER_FAILURE_BODY, request_id)
        if not allowed:
            return _json_response(403, ACCESS_DENIED_BODY, request_id)
        authorizer["principalId"] = str(result["principalId"])
        event["requestContext"]["authorizer"] = {**authorizer, "integrationLatency": 0}
        return None

    def _invoke_api(self, event: dict[str, Any], request_id: str) -> Response:
        """Run the api handler under the integration timeout and turn its result into HTTP."""
        outcome: dict[str, Any] = {}

        def run() -> None:
            context = FakeLambdaContext(
                "oms-webhooks-api", timeout_seconds=self.integration_timeout
            )
            try:
                # One request at a time, as in one Lambda execution environment:
                # Powertools' resolver keeps the current event in class-level
                # state, so two requests in two threads would see each other's.
                with self._api_lock, invocation(context):
                    outcome["result"] = self.api_handler(event, context)
            except BaseException as exc:
                outcome["error"] = exc

        worker = threading.Thread(target=run, name=f"api-{request_id[:8]}", daemon=True)
        worker.start()
        worker.join(self.integration_timeout)
        if worker.is_alive():
            logger.error(
                "api handler ran over %.1f s (API Gateway answers 504)", self.integration_timeout
            )
            return _json_response(504, TIMEOUT_BODY, request_id)
        if "error" in outcome:
            exc = outcome["error"]
            logger.error("api handler raised (API Gateway answers 502)", exc_info=exc)
            return _json_response(502, INTERNAL_ERROR_BODY, request_id)
        try:
            return self.http_response(outcome.get("result"), request_id)
        except (ValueError, TypeError, KeyError):
            logger.exception("malformed api handler result (API Gateway answers 502)")
            return _json_response(502, INTERNAL_ERROR_BODY, request_id)

    @staticmethod
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
        multi = {
            k: [str(v) for v in vs] for k, vs in (result.get("multiValueHeaders") or {}).items()
        }
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


__all__ = [
    "ACCOUNT_ID",
    "BASE_PATH",
    "INTEGRATION_TIMEOUT_SECONDS",
    "MAX_PAYLOAD_BYTES",
    "PUBLIC_PATHS",
    "FakeLambdaContext",
    "Handler",
    "InvocationLogFilter",
    "LocalApiGateway",
    "install_invocation_log_filter",
    "invocation",
    "policy_allows",
]
