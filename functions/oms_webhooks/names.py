"""Names the functions, the local stack and the CDK app share: one home each.

Before issue 18 each was spelled in two to four places; the CDK app
(``infra/oms_webhooks_infra/constants.py``) and the local stack take them from
here, which ``tests/infra/test_names.py`` checks. Nothing here is a
limit of AWS (those are in :mod:`oms_webhooks.limits`) or a setting (those
are in :mod:`oms_webhooks.settings`).
"""

from __future__ import annotations

from typing import Any, Final

#: Service name (Powertools service, log groups, resource prefixes).
SERVICE_NAME: Final = "oms-webhooks"

# -- the API ----------------------------------------------------------------------
#: The API's path prefix (DESIGN §3): every route is under ``/whisperer/``.
API_PREFIX: Final = "whisperer"
API_BASE_PATH: Final = f"/{API_PREFIX}"
#: Paths under the prefix served without a token (GET only), and those whose
#: sub-paths are public too (the docs page's assets).
PUBLIC_PATHS: Final = ("openapi.json", "docs")
PUBLIC_TREES: Final = ("docs",)
#: The header that carries ``Token <token>``.
AUTHORIZATION_HEADER: Final = "Authorization"
#: Gateway Response bodies (UNAUTHORIZED 401, ACCESS_DENIED 403) in the API's error shape
#: (DESIGN §3), identical on API Gateway (infra ``api.py``) and on the local gateway.
UNAUTHORIZED_BODY: Final[dict[str, Any]] = {
    "code": "not_authenticated",
    "detail": (
        "Authentication credentials were not provided or are not valid: send the header "
        "'Authorization: Token <token>' (the scheme is Token, not Bearer)."
    ),
    "errors": {},
}
ACCESS_DENIED_BODY: Final[dict[str, Any]] = {
    "code": "permission_denied",
    "detail": "You do not have permission to perform this action.",
    "errors": {},
}

# -- the functions ----------------------------------------------------------------
#: Lambda entry points by function (CDK ``handler``; the local stack imports ``module:attr``).
HANDLERS: Final = {
    "Authorizer": "oms_webhooks.handlers.authorizer.handler",
    "Api": "oms_webhooks.handlers.api.handler",
    "Router": "oms_webhooks.handlers.router.handler",
    "Dispatcher": "oms_webhooks.handlers.dispatcher.handler",
    "Recoverer": "oms_webhooks.handlers.recoverer.handler",
}


def entry_point(function: str) -> str:
    """``module:attribute`` of a function's handler (the local stack's form)."""
    module, _, attribute = HANDLERS[function].rpartition(".")
    return f"{module}:{attribute}"


#: CloudWatch namespace of the custom metrics (context ``metricsNamespace`` overrides it).
METRICS_NAMESPACE: Final = "OmsWebhooks"
#: Metric names the alarms and the README use (the handlers emit them).
METRIC_DELIVERY_ATTEMPTED: Final = "DeliveryAttempted"
METRIC_DELIVERY_FAILED: Final = "DeliveryFailed"
#: Emitted by the dispatcher and the API when an operational event could not be put on
#: the bus (DESIGN §10); an alarm watches it.
METRIC_OPERATIONAL_EVENT_NOT_PUBLISHED: Final = "OperationalEventNotPublished"

# -- storage defaults ---------------------------------------------------------------
#: Default DynamoDB table names (settings ``*_table``; the CDK app names its own tables).
DEFAULT_SUBSCRIPTIONS_TABLE: Final = f"{SERVICE_NAME}-subscriptions"
DEFAULT_TOKENS_TABLE: Final = f"{SERVICE_NAME}-tokens"
DEFAULT_DELIVERIES_TABLE: Final = f"{SERVICE_NAME}-deliveries"

# -- messaging defaults -------------------------------------------------------------
#: Default EventBridge bus and event source (DESIGN §2, both configurable).
DEFAULT_BUS_NAME: Final = "oms"
DEFAULT_EVENT_SOURCE: Final = "oms"
#: Default Source of the service's operational events (DESIGN §10; never routed to partners).
DEFAULT_OPERATIONAL_SOURCE: Final = SERVICE_NAME

# -- the local stack ----------------------------------------------------------------
#: Default ports of ``make run`` / ``oms-webhooks local`` (Makefile API_PORT, AWS_PORT).
DEFAULT_API_PORT: Final = 8000
DEFAULT_AWS_PORT: Final = 4566
#: Port of the sample partner endpoint, ``oms-webhooks receiver`` (the banner's example target).
DEFAULT_RECEIVER_PORT: Final = 9000
#: Moto's default account and the region the local stack uses (DESIGN §6).
LOCAL_ACCOUNT_ID: Final = "123456789012"
LOCAL_REGION: Final = "us-east-1"
