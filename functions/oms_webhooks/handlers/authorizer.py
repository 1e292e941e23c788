"""API Gateway REQUEST authorizer: ``Authorization: Token <token>`` → tenant.

Allows the whole API (not one method, so a cached policy serves every route;
the cache TTL is the revocation delay, DESIGN §3) and passes the tenant and
the token's event-type scope in the authorizer context. A missing, unknown or
revoked token raises ``Exception("Unauthorized")``, which API Gateway turns
into a 401 (its Gateway Response gives the JSON body).
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.data_classes import event_source
from aws_lambda_powertools.utilities.data_classes.api_gateway_authorizer_event import (
    APIGatewayAuthorizerRequestEvent,
    APIGatewayAuthorizerResponse,
)
from aws_lambda_powertools.utilities.typing import LambdaContext

from oms_webhooks.api.tokens import authenticate
from oms_webhooks.observability import service_logger

logger = service_logger()


@logger.inject_lambda_context(clear_state=True)
@event_source(data_class=APIGatewayAuthorizerRequestEvent)
def handler(event: APIGatewayAuthorizerRequestEvent, context: LambdaContext) -> dict[str, Any]:
    """Authorize one API request; returns an IAM policy document with context."""
    headers = {k.lower(): v for k, v in (event.headers or {}).items()}
    token = authenticate(headers.get("authorization"))
    if token is None:
        logger.info("request refused: missing, unknown or revoked token")
        raise Exception("Unauthorized")  # the exact message API Gateway expects
    arn = event.parsed_arn
    policy = APIGatewayAuthorizerResponse(
        principal_id=token.token_id,
        context={
            "tenant": token.tenant,
            "token_id": token.token_id,
            "event_types": ",".join(token.event_types or []),
        },
        region=arn.region,
        aws_account_id=arn.aws_account_id,
        api_id=arn.api_id,
        stage=arn.stage,
    )
    policy.allow_all_routes()
    logger.append_keys(tenant=token.tenant, token_id=token.token_id)
    logger.info("request authorized")
    return policy.asdict()
