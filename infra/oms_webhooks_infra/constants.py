"""Names, sizes and defaults of the deployment, in one place.

Resource names that the functions also know (tables, queues, bus, rule
pattern) are *not* here: they come from :mod:`oms_webhooks.storage.specs` and
:mod:`oms_webhooks.resources`, the single definitions shared with the local
stack. Names shared with the functions and the local gateway (API prefix,
public paths, handler entry points, metric names) are taken from
:mod:`oms_webhooks.names`, AWS's own limits from :mod:`oms_webhooks.limits`.
This module holds what only the deployment decides: context keys and their
defaults, function sizes, alarm thresholds.
"""

from __future__ import annotations

from typing import Final

from oms_webhooks import limits, names

#: Service name: Powertools ``POWERTOOLS_SERVICE_NAME`` and the ``service`` tag.
SERVICE_NAME: Final = names.SERVICE_NAME
#: Default CloudFormation stack name.
STACK_NAME: Final = "OmsWebhooks"
#: Prefix of the settings' environment variables (``functions/oms_webhooks/settings.py``).
SETTINGS_ENV_PREFIX: Final = "OMS_WEBHOOKS_"

# --- context keys (``cdk deploy -c key=value`` or ``cdk.json`` → ``context``) ---
CTX_BUS_NAME: Final = "busName"
CTX_USE_EXISTING_BUS: Final = "useExistingBus"
CTX_EVENT_SOURCE: Final = "eventSource"
CTX_OPERATIONAL_SOURCE: Final = "operationalSource"
CTX_ALLOW_PRIVATE_TARGETS: Final = "allowPrivateTargets"
CTX_LOG_RETENTION_DAYS: Final = "logRetentionDays"
CTX_REMOVAL_POLICY: Final = "removalPolicy"
CTX_DISPATCHER_MAX_CONCURRENCY: Final = "dispatcherMaxConcurrency"
CTX_DISPATCHER_SLOW_MAX_CONCURRENCY: Final = "dispatcherSlowMaxConcurrency"
CTX_METRICS_NAMESPACE: Final = "metricsNamespace"
CTX_LOG_LEVEL: Final = "logLevel"
CTX_ALARM_TOPIC_ARN: Final = "alarmTopicArn"
CTX_SKIP_BUNDLING: Final = "skipBundling"
CTX_STACK_NAME: Final = "stackName"

# --- defaults of the context values ---
DEFAULT_LOG_RETENTION_DAYS: Final = 30
DEFAULT_REMOVAL_POLICY: Final = "retain"
DEFAULT_DISPATCHER_MAX_CONCURRENCY: Final = 20
#: Maximum concurrency of the slow lane's mapping (DESIGN §9): slow targets
#: share it; the main lane keeps its own ``dispatcherMaxConcurrency``.
#: Context ``dispatcherSlowMaxConcurrency`` (2–1000).
DEFAULT_DISPATCHER_SLOW_MAX_CONCURRENCY: Final = 10
DEFAULT_METRICS_NAMESPACE: Final = names.METRICS_NAMESPACE
DEFAULT_LOG_LEVEL: Final = "INFO"

# --- Lambda ---
#: Runtime (``python3.13``) and the matching ``pip --python-version``.
PYTHON_VERSION: Final = "3.13"
#: ``pip --platform`` tag of the wheels for Lambda's arm64 (Graviton) runtime.
PIP_PLATFORM: Final = "manylinux2014_aarch64"
#: The magic number of Python 3.13's bytecode (``importlib.util.MAGIC_NUMBER``,
#: CPython ``Lib/importlib/_bootstrap_external.py``: "Python 3.13 ... 3571"); changes
#: with ``PYTHON_VERSION``. The asset's ``.pyc`` must carry it or the runtime ignores them.
PYC_MAGIC_NUMBER: Final = 3571
#: Distributions the Lambda runtime already provides: left out of the asset
#: (boto3 and what it needs; botocore's own dependencies python-dateutil and six).
#: urllib3 and jmespath stay: requests and Powertools need them too.
RUNTIME_PROVIDED: Final = ("boto3", "botocore", "s3transfer", "python-dateutil", "six")
#: Handler entry points, by function (the logical name of each function).
HANDLERS: Final = names.HANDLERS
#: Memory per function, in MiB.
MEMORY_MB: Final = {
    "Authorizer": 256,
    "Api": 512,
    "Router": 512,
    "Dispatcher": 512,
    "Recoverer": 256,
}
#: Timeouts of the API-facing functions, in seconds (API Gateway's integration
#: timeout is 29 s; the authorizer must answer well within it). The queue
#: consumers' timeouts come from their ``QueueSpec.function_timeout``.
AUTHORIZER_TIMEOUT_SECONDS: Final = 10
API_TIMEOUT_SECONDS: Final = limits.API_GATEWAY_INTEGRATION_TIMEOUT_SECONDS
#: Lambda's SQS rule: queue visibility ≥ 6 × the consuming function's timeout.
VISIBILITY_TIMEOUT_FACTOR: Final = limits.LAMBDA_SQS_VISIBILITY_FACTOR
#: Concurrent invocations of the router's event source mapping (SQS minimum 2).
ROUTER_MAX_CONCURRENCY: Final = 10
#: Concurrent recoveries (each paced at OMS_WEBHOOKS_RECOVER_RATE; SQS minimum 2).
RECOVERER_MAX_CONCURRENCY: Final = 2

# --- table access, by function and table ``settings_field`` (least privilege) ---
READ: Final = "read"
WRITE: Final = "write"
READ_WRITE: Final = "read_write"
#: A table listed here but not (yet) defined in ``oms_webhooks.storage.models`` is skipped.
#: The router reads deliveries too: its idempotent create (conditional put) reads
#: back the existing delivery when an event is fanned out twice.
TABLE_ACCESS: Final = {
    "Authorizer": {"tokens_table": READ},
    "Api": {"subscriptions_table": READ_WRITE, "deliveries_table": READ_WRITE},
    "Router": {"subscriptions_table": READ, "deliveries_table": READ_WRITE},
    "Dispatcher": {"subscriptions_table": READ_WRITE, "deliveries_table": READ_WRITE},
    "Recoverer": {"subscriptions_table": READ, "deliveries_table": READ_WRITE},
}

# --- EventBridge rule target ---
#: Retries of the rule's delivery to the ingress queue before its DLQ.
RULE_TARGET_RETRY_ATTEMPTS: Final = 10
#: Oldest event the rule target still tries to deliver, in hours.
RULE_TARGET_MAX_EVENT_AGE_HOURS: Final = 24

# --- REST API ---
API_PREFIX: Final = names.API_PREFIX
API_STAGE_NAME: Final = "prod"
#: Paths under ``/whisperer`` served without the authorizer (GET only), as on
#: the local gateway (``oms_webhooks_local.gateway_events.PUBLIC_PATHS``) ...
PUBLIC_PATHS: Final = names.PUBLIC_PATHS
#: ... and whose sub-paths are public too (the docs page's assets).
PUBLIC_TREES: Final = names.PUBLIC_TREES
#: Authorizer result cache: also the delay before a revoked token stops working.
AUTHORIZER_CACHE_TTL_SECONDS: Final = 60
AUTHORIZATION_HEADER: Final = names.AUTHORIZATION_HEADER
#: Stage throttling: steady requests per second and burst.
THROTTLING_RATE_LIMIT: Final = 100
THROTTLING_BURST_LIMIT: Final = 200
#: JSON bodies of API Gateway's own refusals (same shape as the API's errors).
UNAUTHORIZED_BODY: Final = names.UNAUTHORIZED_BODY
ACCESS_DENIED_BODY: Final = names.ACCESS_DENIED_BODY

# --- alarms ---
#: Custom metrics the dispatcher emits (Powertools, dimension ``service``).
METRIC_DELIVERY_ATTEMPTED: Final = names.METRIC_DELIVERY_ATTEMPTED
METRIC_DELIVERY_FAILED: Final = names.METRIC_DELIVERY_FAILED
#: Emitted by the dispatcher and the API when an operational event could not be put
#: on the bus (DESIGN §10): the OMS team may not have been told of a disabled partner.
METRIC_OPERATIONAL_EVENT_NOT_PUBLISHED: Final = names.METRIC_OPERATIONAL_EVENT_NOT_PUBLISHED
#: Alarm when more than this percentage of attempts fail ...
DELIVERY_FAILURE_RATE_PERCENT: Final = 50
#: ... in each of this many consecutive periods of this many seconds.
DELIVERY_FAILURE_EVALUATION_PERIODS: Final = 3
ALARM_PERIOD_SECONDS: Final = 300
