"""The whisperer-compatible REST API (DESIGN §3) on Powertools' REST resolver.

The resolver (:class:`~oms_webhooks.api.openapi.WhispererResolver`, whose
OpenAPI document says 400 where Powertools says 422) includes one router per
resource under :data:`~oms_webhooks.api.routes.BASE` and the router of error
answers (:mod:`oms_webhooks.api.errors`); :func:`resolve` runs the raw-body
gate (:mod:`oms_webhooks.api.gate`) before Powertools parses anything.
Routes validate their input with the pydantic models of
:mod:`oms_webhooks.api.schemas` (Powertools ``enable_validation``); the tenant
always comes from the authorizer's context, never from the request.
"""

from __future__ import annotations

import threading
from typing import Any

from aws_lambda_powertools.event_handler import Response, content_types
from aws_lambda_powertools.utilities.typing import LambdaContext

from oms_webhooks.api import errors, gate
from oms_webhooks.api.openapi import WhispererResolver, openapi_settings
from oms_webhooks.api.routes import BASE, deliveries, recover, registry, subscriptions

app = WhispererResolver(enable_validation=True)
app.include_router(errors.router)
# In this order: it is the order of the OpenAPI document's paths.
for _routes in (registry, subscriptions, deliveries, recover):
    app.include_router(_routes.router, prefix=BASE)

DOCS_PATH = f"{BASE}/docs"
_docs_lock = threading.Lock()
_docs_enabled = threading.Event()


def _enable_docs(event: dict[str, Any]) -> None:
    """Register Powertools' Swagger UI route at :data:`DOCS_PATH` before its first request.

    Registering it imports the OpenAPI document models (~100 pydantic models),
    so it waits for a request to the docs page instead of every cold start.
    """
    if _docs_enabled.is_set() or not str(event.get("path") or "").rstrip("/").endswith(DOCS_PATH):
        return
    with _docs_lock:
        if not _docs_enabled.is_set():
            app.enable_swagger(path=DOCS_PATH, **openapi_settings())
            _docs_enabled.set()


@app.get(f"{BASE}/openapi.json", include_in_schema=False)
def openapi_document() -> Response[Any]:
    """The OpenAPI document (public; paths carry the ``/whisperer`` prefix)."""
    document = app.get_openapi_json_schema(**openapi_settings())
    return Response(status_code=200, content_type=content_types.APPLICATION_JSON, body=document)


def resolve(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Answer one API Gateway REST (v1) proxy event with a proxy response dict."""
    refused = gate.check_body(event)
    if refused is not None:
        return gate.refusal(refused)
    gate.lowercase_content_type(event)
    _enable_docs(event)
    return app.resolve(event, context)
