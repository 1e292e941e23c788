"""Create the AWS resources the service needs, idempotently, from their single definitions.

Provisioning is a list of steps (:data:`STEPS`), each a function
``step(ctx) -> list[str]`` that creates what is missing and returns a line per
resource for the log. Running the list twice changes nothing the second time.
Tables are created by PynamoDB (``Model.create_table``) from the models of
:data:`oms_webhooks.storage.specs.TABLES`; the messaging
resources (SQS queues and their DLQs, the EventBridge bus, and the rule that
sends catalogue events to the ingress queue) from :mod:`oms_webhooks.resources`
(steps in :mod:`oms_webhooks_local.messaging`),
with the bus name and event source of the settings (``bus_name``,
``event_source``). They mirror the CDK stack (``infra/``): same queue
attributes, the same rule pattern, and the queue policy CDK's ``SqsQueue``
target writes (``events.amazonaws.com`` may ``sqs:SendMessage`` for that rule).
An existing queue whose attributes differ is updated to the definition.

Every boto3 client is built with an explicit endpoint (moto's server on the
local stack); nothing here reads ``AWS_ENDPOINT_URL`` by itself.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import boto3
from botocore.config import Config
from pynamodb.constants import PAY_PER_REQUEST_BILLING_MODE
from pynamodb.models import Model

from oms_webhooks import names
from oms_webhooks.resources import (
    DELIVERY_QUEUE,
    DELIVERY_SLOW_QUEUE,
    RECOVERY_QUEUE,
    SECRETS_KEY_ALIAS,
)
from oms_webhooks.settings import Settings, get_settings
from oms_webhooks.storage.specs import MODELS, TABLES
from oms_webhooks_local.messaging import (
    provision_bus,
    provision_queues,
    provision_rule,
    provision_secrets_key,
    queue_url,
)

logger = logging.getLogger(__name__)

#: Region and credentials of the local stack (moto's default account), DESIGN §6.
LOCAL_REGION = names.LOCAL_REGION
LOCAL_ACCESS_KEY_ID = "testing"
LOCAL_SECRET_ACCESS_KEY = "testing"  # noqa: S105 - moto's well-known fake credentials


@dataclass
class ProvisionContext:
    """What a provisioning step needs: the endpoint, the settings and AWS clients.

    Attributes:
        endpoint_url: the AWS endpoint (``http://127.0.0.1:<port>`` for moto),
            or None for the default endpoint of real AWS.
        settings: resource names and options.
        region: the AWS region.
        local_credentials: sign with moto's ``testing``/``testing`` credentials
            (True) or use the default credential chain (False).
    """

    endpoint_url: str | None
    settings: Settings
    region: str = LOCAL_REGION
    local_credentials: bool = True

    def client(self, service: str) -> Any:
        """A boto3 client for ``service`` (``"dynamodb"``, ``"sqs"``, ...).

        Clients are cached per process by service, endpoint, region and
        credentials mode (building one costs ~0.1 s; they are thread-safe).
        """
        key = (service, self.endpoint_url, self.region, self.local_credentials)
        with _clients_lock:
            if key not in _clients:
                kwargs: dict[str, Any] = {
                    "region_name": self.region,
                    "endpoint_url": self.endpoint_url,
                    "config": Config(retries={"max_attempts": 3, "mode": "standard"}),
                }
                if self.local_credentials:
                    kwargs["aws_access_key_id"] = LOCAL_ACCESS_KEY_ID
                    kwargs["aws_secret_access_key"] = LOCAL_SECRET_ACCESS_KEY
                _clients[key] = boto3.session.Session().client(service, **kwargs)
            return _clients[key]


_clients: dict[tuple[str, str | None, str, bool], Any] = {}
_clients_lock = threading.Lock()

#: A provisioning step: creates what is missing, returns one log line per resource.
Step = Callable[[ProvisionContext], list[str]]


def table_model(ctx: ProvisionContext, owner: type[Model]) -> type[Model]:
    """``owner``'s table as a model bound to ``ctx`` (endpoint, region, credentials).

    A subclass of ``owner`` (keys and TTL attribute from its definition) that
    also carries the GSIs of every model sharing the table (``Meta.settings_field``),
    named as in ``ctx.settings``, billed on demand (``PAY_PER_REQUEST``) as the
    CDK app deploys it. The bound models of the code (``bind_tables``) are not touched.
    """
    field = owner.Meta.settings_field  # type: ignore[attr-defined]
    indexes = {
        f"_index_{name}": index
        for model in MODELS
        if model.Meta.settings_field == field  # type: ignore[attr-defined]
        for name, index in model._indexes.items()
    }
    meta = type(
        "Meta",
        (),
        {
            "table_name": getattr(ctx.settings, field),
            "settings_field": field,
            "host": ctx.endpoint_url,
            "region": ctx.region,
            "billing_mode": PAY_PER_REQUEST_BILLING_MODE,
            "aws_access_key_id": LOCAL_ACCESS_KEY_ID if ctx.local_credentials else None,
            "aws_secret_access_key": LOCAL_SECRET_ACCESS_KEY if ctx.local_credentials else None,
        },
    )
    namespace = {"Meta": meta, "_connection": None, "__module__": __name__, **indexes}
    return type(owner.__name__, (owner,), namespace)


def _ensure_table(ctx: ProvisionContext, owner: type[Model]) -> str:
    model = table_model(ctx, owner)
    name = model.Meta.table_name
    existed = model.exists()
    # Model.create_table creates the table if missing, waits for it and enables
    # the TTL of its TTLAttribute (DynamoDB refuses enabling it twice: ignored
    # when the table existed).
    model.create_table(wait=True, ignore_update_ttl_errors=existed)
    state = "exists" if existed else "created"
    if existed and _add_missing_indexes(ctx, model):
        state = "updated"
    return f"dynamodb table {name}: {state}"


def _add_missing_indexes(ctx: ProvisionContext, model: type[Model]) -> bool:
    """Add the GSIs of ``model`` an existing table lacks (a state kept from an older version)."""
    dynamodb = ctx.client("dynamodb")
    name = model.Meta.table_name
    table = dynamodb.describe_table(TableName=name)["Table"]
    have = {index["IndexName"] for index in table.get("GlobalSecondaryIndexes", [])}
    missing = [
        i for i in model._get_schema()["global_secondary_indexes"] if i["index_name"] not in have
    ]
    for index in missing:
        dynamodb.update_table(
            TableName=name,
            AttributeDefinitions=index["attribute_definitions"],
            GlobalSecondaryIndexUpdates=[
                {
                    "Create": {
                        "IndexName": index["index_name"],
                        "KeySchema": index["key_schema"],
                        "Projection": index["projection"],
                    }
                }
            ],
        )
    return bool(missing)


def provision_tables(ctx: ProvisionContext) -> list[str]:
    """Step: every DynamoDB table of :data:`~oms_webhooks.storage.specs.TABLES`.

    Returns:
        one line per table, ``"dynamodb table <name>: created|exists|updated"``.

    Raises:
        pynamodb.exceptions.TableError, botocore.exceptions.ClientError: the
            endpoint refused to create or describe a table.
    """
    return [_ensure_table(ctx, owner) for owner in TABLES]


#: The provisioning steps, in order (queues before the rule that targets them).
STEPS: list[Step] = [
    provision_tables,
    provision_queues,
    provision_bus,
    provision_rule,
    provision_secrets_key,
]


def provisioned_environ(
    endpoint_url: str | None,
    *,
    settings: Settings | None = None,
    region: str = LOCAL_REGION,
    local_credentials: bool = True,
) -> dict[str, str]:
    """The settings the handlers need that only exist once provisioned.

    Returns:
        ``OMS_WEBHOOKS_DELIVERY_QUEUE_URL`` (the router sends to it),
        ``OMS_WEBHOOKS_DELIVERY_SLOW_QUEUE_URL`` (the slow lane) and
        ``OMS_WEBHOOKS_DELIVERY_DLQ_URL`` (the dispatcher moves malformed
        messages there).
    """
    ctx = ProvisionContext(
        endpoint_url=endpoint_url,
        settings=settings or get_settings(),
        region=region,
        local_credentials=local_credentials,
    )
    sqs = ctx.client("sqs")
    return {
        "OMS_WEBHOOKS_DELIVERY_QUEUE_URL": queue_url(ctx, DELIVERY_QUEUE),
        "OMS_WEBHOOKS_DELIVERY_SLOW_QUEUE_URL": queue_url(ctx, DELIVERY_SLOW_QUEUE),
        "OMS_WEBHOOKS_DELIVERY_DLQ_URL": str(
            sqs.get_queue_url(QueueName=DELIVERY_QUEUE.dlq_name)["QueueUrl"]
        ),
        "OMS_WEBHOOKS_SECRETS_KMS_KEY_ID": SECRETS_KEY_ALIAS,
        "OMS_WEBHOOKS_RECOVERY_QUEUE_URL": queue_url(ctx, RECOVERY_QUEUE),
    }


def provision(
    endpoint_url: str | None,
    *,
    settings: Settings | None = None,
    region: str = LOCAL_REGION,
    local_credentials: bool = True,
    steps: Sequence[Step] | None = None,
) -> list[str]:
    """Create every missing resource on ``endpoint_url``; idempotent.

    Args:
        endpoint_url: AWS endpoint, e.g. ``http://127.0.0.1:4566`` (moto), or
            None for real AWS.
        settings: names and options; default :func:`~oms_webhooks.settings.get_settings`.
        region: the AWS region (the local stack always uses ``us-east-1``).
        local_credentials: sign with ``testing``/``testing`` (moto) instead of
            the default credential chain.
        steps: the steps to run; default :data:`STEPS`.

    Returns:
        one log line per resource (what was created, what already existed).

    Raises:
        botocore.exceptions.ClientError, botocore.exceptions.EndpointConnectionError:
            the endpoint refused a request or could not be reached.
    """
    ctx = ProvisionContext(
        endpoint_url=endpoint_url,
        settings=settings or get_settings(),
        region=region,
        local_credentials=local_credentials,
    )
    lines: list[str] = []
    for step in STEPS if steps is None else steps:
        done = step(ctx)
        for line in done:
            logger.debug("provision: %s", line)
        lines.extend(done)
    return lines


__all__ = [
    "LOCAL_ACCESS_KEY_ID",
    "LOCAL_REGION",
    "LOCAL_SECRET_ACCESS_KEY",
    "STEPS",
    "ProvisionContext",
    "Step",
    "provision",
    "provision_tables",
    "provisioned_environ",
    "table_model",
]
