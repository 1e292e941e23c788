"""Limits of the AWS services the functions run on, with their sources: one home each.

Each constant is a quota or fixed limit of AWS, not a choice of ours
(choices are settings or in ``infra/oms_webhooks_infra/constants.py``).
"""

from __future__ import annotations

from typing import Final

KiB: Final = 1024
MiB: Final = 1024 * KiB

# -- EventBridge (PutEvents API reference; "Amazon EventBridge quotas") ---------------
#: Largest PutEvents request entry, as EventBridge sizes it (DESIGN §2).
EVENTBRIDGE_ENTRY_MAX_BYTES: Final = 256 * KiB
#: Most entries in one PutEvents request.
EVENTBRIDGE_PUT_EVENTS_MAX_ENTRIES: Final = 10

# -- SQS ("Amazon SQS quotas") --------------------------------------------------------
#: Largest message, and the sum of a SendMessageBatch's bodies: SQS takes 1 MiB since
#: 2025, moto still enforces 256 KiB, so the code batches by the lower figure.
SQS_MESSAGE_MAX_BYTES: Final = 1 * MiB
SQS_BATCH_MAX_BYTES: Final = 256 * KiB  # moto's limit (and SQS's before 2025)
#: Most entries in SendMessageBatch / ChangeMessageVisibilityBatch / DeleteMessageBatch,
#: and most messages per ReceiveMessage.
SQS_BATCH_MAX_ENTRIES: Final = 10
#: Longest DelaySeconds, in seconds (15 minutes).
SQS_MAX_DELAY_SECONDS: Final = 900
#: Longest visibility timeout per receive, in seconds (12 hours).
SQS_MAX_VISIBILITY_SECONDS: Final = 43_200
#: Longest message retention, in seconds (14 days).
SQS_MAX_RETENTION_SECONDS: Final = 1_209_600
#: Highest maxReceiveCount of a redrive policy.
SQS_MAX_RECEIVE_COUNT: Final = 1_000

# -- API Gateway REST APIs ("Amazon API Gateway quotas") ------------------------------
#: Largest request payload, in bytes (10 MB).
API_GATEWAY_MAX_PAYLOAD_BYTES: Final = 10 * MiB
#: Integration timeout of a REST API, in seconds (29 s unless raised by a quota request).
API_GATEWAY_INTEGRATION_TIMEOUT_SECONDS: Final = 29

# -- Lambda ("Lambda quotas"; SQS event source mapping) --------------------------------
#: Largest batch of an SQS event source mapping for a standard queue without a window.
LAMBDA_SQS_MAX_BATCH_SIZE: Final = 10
#: Queue visibility ≥ 6 × the function's timeout (Lambda developer guide, SQS mapping).
LAMBDA_SQS_VISIBILITY_FACTOR: Final = 6

# -- DynamoDB ("Service, account, and table quotas in Amazon DynamoDB") --------------
#: Largest item, in bytes (400 KB, attribute names included).
DYNAMODB_ITEM_MAX_BYTES: Final = 400 * KiB
#: Most actions in one TransactWriteItems.
DYNAMODB_TRANSACT_MAX_ITEMS: Final = 100
