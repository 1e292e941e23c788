"""The whisperer-compatible REST API (Powertools ``APIGatewayRestResolver``).

Work in progress: routes are added by the foundation issue.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayRestResolver
from aws_lambda_powertools.utilities.typing import LambdaContext

from oms_webhooks.event_types import EVENT_TYPES

app = APIGatewayRestResolver(enable_validation=True)


@app.get("/whisperer/hooks/registry/")
def registry() -> dict[str, Any]:
    """The event catalogue."""
    return {"event_types": list(EVENT_TYPES)}


def resolve(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Answer one API Gateway REST (v1) proxy event."""
    return app.resolve(event, context)
