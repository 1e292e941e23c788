"""API Lambda: API Gateway REST proxy events → the whisperer API."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from oms_webhooks.api import app as api_app
from oms_webhooks.observability import service_logger

logger = service_logger()


@logger.inject_lambda_context(
    correlation_id_path=correlation_paths.API_GATEWAY_REST, clear_state=True
)
def handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Answer one API request (the authorizer has already run)."""
    return api_app.resolve(event, context)
