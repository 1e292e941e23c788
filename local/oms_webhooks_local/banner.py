"""The text the local stack prints once it is up: where things are and how to try it."""

from __future__ import annotations

from oms_webhooks.names import (
    API_BASE_PATH,
    AUTHORIZATION_HEADER,
    DEFAULT_RECEIVER_PORT,
    LOCAL_REGION,
)
from oms_webhooks_local.stack import LocalStack


def banner(stack: LocalStack) -> str:
    """The text printed when the local stack is up: where things are and how to try it.

    The development token appears once, in the ``export TOKEN=...`` line.
    """
    api = f"{stack.api_url}{API_BASE_PATH}"
    auth = f'-H "{AUTHORIZATION_HEADER}: Token $TOKEN"'
    body = (
        '{"event_type": "package.created", '
        f'"target_url": "http://127.0.0.1:{DEFAULT_RECEIVER_PORT}/", '
        '"secret_key": "secret"}'
    )
    return "\n".join(
        [
            "oms-webhooks local stack is ready.",
            "",
            f"  API:           {api}/",
            f"  OpenAPI:       {api}/openapi.json  (docs: {api}/docs)",
            f"  AWS endpoint:  {stack.aws_endpoint_url}  "
            f"(moto; region {LOCAL_REGION}, testing/testing)",
            *_state_lines(stack),
            "",
            "Development token (tenant 'dev'; kept in the state directory):",
            "",
            f"  export TOKEN={stack.dev_token}",
            f"  export AWS_ENDPOINT_URL={stack.aws_endpoint_url}",
            "",
            "Try (in another shell):",
            "",
            "  # a sample partner endpoint that verifies signatures",
            f"  .venv/bin/oms-webhooks receiver --port {DEFAULT_RECEIVER_PORT} --secret secret",
            "  # while rotating its secret (rotate_secret/), accept the old and the new one:",
            "  # X-Whisperer-Signature switches to the new secret at once",
            f"  .venv/bin/oms-webhooks receiver --port {DEFAULT_RECEIVER_PORT} --secret secret "
            "--secret NEW_SECRET",
            "  # subscribe it",
            f"  curl -s -X POST {api}/hooks/ {auth} \\",
            f"       -H 'Content-Type: application/json' -d '{body}'",
            "  # publish an OMS event (PutEvents on the local bus)",
            "  .venv/bin/oms-webhooks publish package.created --data '{\"id\": 1}'",
            "  # the delivery log",
            f"  curl -s {api}/hook_events/ {auth}",
            "  # list your subscriptions",
            f"  curl -s {api}/hooks/ {auth}",
            "  # unsubscribe",
            f"  curl -s -X DELETE {api}/hooks/<id>/ {auth}",
            "",
            "Press Ctrl-C to stop.",
        ]
    )


def _state_lines(stack: LocalStack) -> list[str]:
    """The banner's line about where the state is kept (none without a state directory)."""
    if stack.state_dir is None:
        return ["  State:         not kept (gone at stop)"]
    resumed = (
        f"; resumed {stack.restored_items} items, {stack.resumed_deliveries} pending deliveries"
        + (f", {stack.requeued_events} events to route" if stack.requeued_events else "")
        if stack.restored_items
        else "; started empty"
    )
    return [f"  State:         {stack.state_dir}{resumed}"]
