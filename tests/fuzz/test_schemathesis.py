"""Bounded schemathesis run against the API's OpenAPI document (issue 7).

Every documented operation is fuzzed twice on an in-process local stack
(tests/fuzz/conftest.py: no delivery workers behind it): with a fresh
tenant's valid token and without any token. The checks are schemathesis'
defaults: no 5xx, responses conform to the documented schema, content type
and status codes, schema-violating input is refused and schema-valid input is
not refused with an undocumented status, undeclared methods get 405.

The document is built in-process at import (schemathesis generates one test
per operation at collection, before any stack runs), and
:func:`test_the_stack_serves_the_fuzzed_document` checks that the stack's
``GET /whisperer/openapi.json`` serves exactly that document.

Left out: the operations that send a webhook at once (the manual resend and
ping): the fuzzer invents target URLs. Every other request stays on
loopback, and the suite's guard (tests/conftest.py) refuses any other
connection and answers every DNS lookup "does not resolve" (which the URL
guard accepts, as it should).

Bounds: ``max_examples`` per operation and phase (``OMS_WEBHOOKS_FUZZ_EXAMPLES``,
default 25; about 20 s on 2 cores), derandomized so a run is reproducible
(``OMS_WEBHOOKS_FUZZ_RANDOM=1`` explores with a random seed instead).
"""

from __future__ import annotations

import json
import os
import secrets
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.core.result import Ok

from oms_webhooks.api.app import app
from oms_webhooks.api.openapi import openapi_settings
from oms_webhooks.api.tokens import create_token
from oms_webhooks_local.stack import LocalStack

#: Operations that send a webhook: never fuzzed.
SENDING_OPERATIONS = r"/(retry|ping)/$"
#: The fuzzed tenant and its token, fixed per process so that the schema's auth
#: configuration (loaded at import) can carry it.
FUZZ_TENANT = f"fuzz-{uuid.uuid4().hex[:12]}"
FUZZ_TOKEN = secrets.token_urlsafe(32)


def _document() -> dict[str, Any]:
    return dict(json.loads(app.get_openapi_json_schema(**openapi_settings())))


def _config(**extra: Any) -> Any:
    return schemathesis.Config.from_dict(
        {
            "checks": {
                # Configured: the document cannot say which event types exist, which target
                # URLs the guard refuses, which schedules outlast the retention, what is a
                # duplicate or outside a token's scope. Schema-valid input may rightly get
                # those documented 4xx; any other status (413, 415, 5xx...) still fails.
                "positive_data_acceptance": {"expected-statuses": ["2xx", 400, 401, 403, 404, 409]}
            },
            **extra,
        }
    )


# The token goes in through schemathesis' own auth (not a fixed header), so that its
# "Authorization missing" negations are really sent without one.
with_token = schemathesis.openapi.from_dict(
    _document(), config=_config(auth={"openapi": {"Token": {"api_key": f"Token {FUZZ_TOKEN}"}}})
).exclude(path_regex=SENDING_OPERATIONS)
# No Authorization header at all (not even an invented one).
without_token = schemathesis.openapi.from_dict(
    _document(), config=_config(generation={"with-security-parameters": False})
).exclude(path_regex=SENDING_OPERATIONS)

FUZZ_SETTINGS = settings(
    max_examples=int(os.environ.get("OMS_WEBHOOKS_FUZZ_EXAMPLES", "25")),
    deadline=None,  # a request to the stack takes milliseconds, sometimes more
    derandomize=not os.environ.get("OMS_WEBHOOKS_FUZZ_RANDOM"),
    database=None,
    # The stack and tenant fixtures are per module/test by design (not reset per example);
    # generating bodies for these schemas is sometimes slow and filters many candidates.
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.filter_too_much,
        HealthCheck.data_too_large,
    ],
)


@pytest.fixture
def fuzz_tenant(fuzz_stack: LocalStack) -> Iterator[str]:
    """The fuzzed tenant (its token is :data:`FUZZ_TOKEN`); its subscriptions go afterwards."""
    fuzz_stack.provision()  # a unit test's moto mock may have reset the shared backends
    create_token(tenant=FUZZ_TENANT, token=FUZZ_TOKEN)
    yield FUZZ_TENANT
    from oms_webhooks.storage.models import SubscriptionModel
    from oms_webhooks.storage.specs import bind_tables
    from oms_webhooks.subscriptions.service import delete_subscription

    bind_tables()
    for item in SubscriptionModel.query(FUZZ_TENANT):
        delete_subscription(FUZZ_TENANT, item.id)


@with_token.parametrize()
@FUZZ_SETTINGS
def test_api_with_a_valid_token(case: Any, fuzz_stack: LocalStack, fuzz_tenant: str) -> None:
    case.call_and_validate(base_url=fuzz_stack.api_url, timeout=15)


@without_token.parametrize()
@FUZZ_SETTINGS
def test_api_without_a_token(case: Any, fuzz_stack: LocalStack) -> None:
    # Every documented operation needs a token (openapi.json and docs are public but
    # not in the document; tests/functional/test_local_stack.py covers them).
    response = case.call_and_validate(base_url=fuzz_stack.api_url, timeout=15)
    assert response.status_code == 401, (case.method, case.formatted_path, response.text)


def test_the_stack_serves_the_fuzzed_document(fuzz_stack: LocalStack) -> None:
    response = requests.get(f"{fuzz_stack.api_url}/whisperer/openapi.json", timeout=10)
    assert response.status_code == 200
    assert response.json() == _document()


def test_no_sending_operation_is_fuzzed() -> None:
    fuzzed = {
        result.ok().path
        for schema in (with_token, without_token)
        for result in schema.get_all_operations()
        if isinstance(result, Ok)
    }
    assert fuzzed
    assert not [path for path in fuzzed if path.endswith(("/retry/", "/ping/"))]
    assert "/whisperer/hooks/{subscription_id}/" in fuzzed
