"""Dispatcher Lambda (SQS delivery queue → partner POST). Filled by the fan-out issue."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext


def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Not yet implemented: reports every record as a batch item failure, loses nothing."""
    return {
        "batchItemFailures": [{"itemIdentifier": r["messageId"]} for r in event.get("Records", [])]
    }
