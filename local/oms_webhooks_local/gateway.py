"""A local API Gateway: WSGI requests → REST (v1) proxy events → the real Lambda handlers.

:class:`LocalApiGateway` is a WSGI application that behaves like the
deployed REST API (DESIGN §3): a ``{proxy+}`` resource under ``/whisperer``
sends every path to the api handler; every path except the public ones
(:data:`~oms_webhooks_local.gateway_events.PUBLIC_PATHS`) first goes through
the REQUEST authorizer. Its
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
``{"code", "detail", "errors"}`` (DESIGN §3); their bodies are in
:mod:`oms_webhooks_local.gateway_responses`.

Every handler runs inside :func:`~oms_webhooks_local.lambda_context.invocation`,
so that its log lines name its own function even though all functions share
one process here (on Lambda, each has its own).

The authorizer's result is not cached here (API Gateway caches it up to 60 s:
the documented revocation delay); locally a revoked token is refused at once.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Callable, Iterable
from typing import Any

from werkzeug.exceptions import HTTPException, RequestEntityTooLarge
from werkzeug.wrappers import Request, Response

from oms_webhooks import limits
from oms_webhooks_local import gateway_events
from oms_webhooks_local.authorizer_policy import policy_allows
from oms_webhooks_local.gateway_events import BASE_PATH
from oms_webhooks_local.gateway_responses import (
    ACCESS_DENIED_BODY,
    AUTHORIZER_FAILURE_BODY,
    BAD_REQUEST_BODY,
    INTERNAL_ERROR_BODY,
    MAX_PAYLOAD_BYTES,
    MISSING_TOKEN_BODY,
    TIMEOUT_BODY,
    TOO_LARGE_BODY,
    UNAUTHORIZED_BODY,
    json_response,
)
from oms_webhooks_local.lambda_context import FakeLambdaContext, Handler, invocation

logger = logging.getLogger(__name__)

#: API Gateway's REST integration timeout (29 s).
INTEGRATION_TIMEOUT_SECONDS = float(limits.API_GATEWAY_INTEGRATION_TIMEOUT_SECONDS)


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
            response = json_response(500, INTERNAL_ERROR_BODY, str(uuid.uuid4()))
        return response(environ, start_response)

    def handle(self, request: Request) -> Response:
        """Answer one request as API Gateway would (see the module docstring)."""
        request_id = str(uuid.uuid4())
        path = request.path
        if not path.startswith(BASE_PATH + "/") or path == BASE_PATH + "/":
            return json_response(403, MISSING_TOKEN_BODY, request_id)
        try:
            body = request.get_data(cache=True)
        except RequestEntityTooLarge:
            return json_response(413, TOO_LARGE_BODY, request_id)
        except (HTTPException, OSError):  # ClientDisconnected, or the read deadline passed
            return json_response(400, BAD_REQUEST_BODY, request_id)
        if len(body) > self.max_payload_bytes:  # pragma: no cover - werkzeug enforces it
            return json_response(413, TOO_LARGE_BODY, request_id)

        event = self.proxy_event(request, body, request_id)
        if not gateway_events.is_public(path):
            denied = self._authorize(event)
            if isinstance(denied, Response):
                return denied
        return self._invoke_api(event, request_id)

    def wait_for_handler(self) -> None:
        """Return once no api handler runs.

        A handler that ran over the integration timeout goes on after its 504
        (API Gateway stops waiting; Lambda does not stop the function), holding
        this environment: the next request would wait for it, then 504 too.
        """
        with self._api_lock:
            pass

    # -- events -------------------------------------------------------------

    def proxy_event(self, request: Request, body: bytes, request_id: str) -> dict[str, Any]:
        """The REST (v1) proxy event for ``request`` (:mod:`~oms_webhooks_local.gateway_events`)."""
        return gateway_events.proxy_event(
            request, body, request_id, stage=self.stage, api_id=self.api_id
        )

    # -- invocations --------------------------------------------------------

    def _authorize(self, event: dict[str, Any]) -> Response | None:
        """Run the authorizer; fill ``requestContext.authorizer`` or return the refusal."""
        request_id = event["requestContext"]["requestId"]
        auth_event = gateway_events.authorizer_event(event, api_id=self.api_id, stage=self.stage)
        context = FakeLambdaContext("oms-webhooks-authorizer", timeout_seconds=10.0)
        try:
            with invocation(context):
                result = self.authorizer_handler(auth_event, context)
        except Exception as exc:
            if str(exc) == "Unauthorized":
                return json_response(401, UNAUTHORIZED_BODY, request_id)
            logger.exception("authorizer failed (API Gateway answers 500)")
            return json_response(500, AUTHORIZER_FAILURE_BODY, request_id)
        try:
            if not isinstance(result, dict) or "principalId" not in result:
                raise ValueError("authorizer result without principalId")
            allowed = policy_allows(result.get("policyDocument"), auth_event["methodArn"])
            authorizer = {k: _stringify(v) for k, v in (result.get("context") or {}).items()}
        except (ValueError, AttributeError, TypeError):
            logger.exception("malformed authorizer result (API Gateway answers 500)")
            return json_response(500, AUTHORIZER_FAILURE_BODY, request_id)
        if not allowed:
            return json_response(403, ACCESS_DENIED_BODY, request_id)
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
            return json_response(504, TIMEOUT_BODY, request_id)
        if "error" in outcome:
            exc = outcome["error"]
            logger.error("api handler raised (API Gateway answers 502)", exc_info=exc)
            return json_response(502, INTERNAL_ERROR_BODY, request_id)
        try:
            return gateway_events.http_response(outcome.get("result"), request_id)
        except (ValueError, TypeError, KeyError):
            logger.exception("malformed api handler result (API Gateway answers 502)")
            return json_response(502, INTERNAL_ERROR_BODY, request_id)


__all__ = [
    "INTEGRATION_TIMEOUT_SECONDS",
    "LocalApiGateway",
]
