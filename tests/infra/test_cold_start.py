"""Import-time work of the handlers: a cold start loads what its first event needs, no more.

Each handler is imported in a new interpreter (``python -I``, the environment a
deployed function has) and the modules it loaded are read from ``sys.modules``:
boto3 (botocore's clients serve), Powertools' OpenAPI document models (the API
needs them only for ``openapi.json`` and the docs page), the API's pydantic
shapes outside the API, ``requests`` where nothing sends a webhook, the delivery
pipeline outside the dispatcher, the API's ping and resend in the dispatcher.
Each costs 10-140 ms per cold start (README "Performance", cold import). The time itself
is measured by ``bench/cold_import.py``, not here.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

#: What each handler must not load at import, and why it would be waste.
NOT_AT_IMPORT = {
    "api": {"boto3", "aws_lambda_powertools.event_handler.openapi.models"},
    "authorizer": {"boto3", "requests", "oms_webhooks.api.schemas", "oms_webhooks.api.app"},
    "router": {
        "boto3",
        "requests",
        "oms_webhooks.api.schemas",
        "oms_webhooks.delivery.pipeline",
        "oms_webhooks.delivery.batch",
    },
    "dispatcher": {
        "boto3",
        "oms_webhooks.api.schemas",
        "oms_webhooks.api.app",
        "oms_webhooks.delivery.manual",
    },
    "recoverer": {"boto3", "oms_webhooks.api.app", "oms_webhooks.delivery.pipeline"},
}
#: What a deployed function has in its environment (bench/cold_import.py's LAMBDA_ENV).
LAMBDA_ENV = {
    "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
    "LANG": "C.UTF-8",
    "POWERTOOLS_SERVICE_NAME": "oms-webhooks",
    "POWERTOOLS_METRICS_NAMESPACE": "OmsWebhooks",
    "AWS_REGION": "us-east-1",
    "AWS_DEFAULT_REGION": "us-east-1",
}
_PROBE = (
    "import importlib, json, sys; importlib.import_module(sys.argv[1]); "
    "print(json.dumps(sorted(sys.modules)))"
)


def _loaded_by(module: str) -> set[str]:
    done = subprocess.run(
        [sys.executable, "-I", "-c", _PROBE, module],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env=LAMBDA_ENV,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return set(json.loads(done.stdout.strip().splitlines()[-1]))


@pytest.mark.parametrize("handler", sorted(NOT_AT_IMPORT))
def test_a_handler_loads_at_import_only_what_its_first_event_needs(handler: str) -> None:
    # GIVEN a new interpreter with a deployed function's environment
    # WHEN it imports the handler
    loaded = _loaded_by(f"oms_webhooks.handlers.{handler}")
    # THEN the handler and its plain modules are there (the probe saw a real import)
    assert f"oms_webhooks.handlers.{handler}" in loaded
    assert "aws_lambda_powertools" in loaded and "pynamodb" in loaded
    # AND nothing that only a rarer request, or another function, needs
    assert NOT_AT_IMPORT[handler] & loaded == set()
