"""Functional tests run against one local stack per test process, over real HTTP.

``local_stack`` (session) starts a :class:`~oms_webhooks_local.stack.LocalStack`
in-process on free ports (port 0), so that pytest-xdist workers never clash.
``stack`` (per test) re-runs the idempotent provisioning when moto's backends
were reset since it last did: moto's in-process mocks (``mock_aws``) share and
reset the same backends, so a unit test in the same worker could have wiped
them. (Provisioning before every test cost about a second each, most of the
suite's time.) ``tenant`` gives each test its own tenant and token, so tests
never see each other's data.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Callable, Iterator

import pytest
import requests

from oms_webhooks.api.tokens import create_token
from oms_webhooks_local.stack import LocalStack
from tests.functional.helpers import Catcher, Tenant, api
from tests.receivers import Receiver


class _MotoResets:
    """Counts resets of moto's backends in this process (every ``mock_aws`` start and stop).

    moto's ``BackendDict.reset`` is the one place that wipes every service's
    state (``moto/core/base_backend.py``); counting its calls says exactly
    when the local stack's resources may be gone.
    """

    count = 0
    provisioned_at = -1

    @classmethod
    def install(cls) -> None:
        from moto.core.base_backend import BackendDict

        if getattr(BackendDict.reset, "_counted", False):
            return
        reset = BackendDict.reset.__func__  # type: ignore[attr-defined]

        def counted(backends: type[BackendDict]) -> None:  # type: ignore[type-arg]
            cls.count += 1
            reset(backends)

        counted._counted = True  # type: ignore[attr-defined]
        BackendDict.reset = classmethod(counted)  # type: ignore[assignment,method-assign]


@pytest.fixture(scope="session")
def local_stack() -> Iterator[LocalStack]:
    """The process's local stack (API and moto on free ports), stopped after the session."""
    _MotoResets.install()
    with LocalStack(api_port=0, aws_port=0) as stack:
        yield stack


@pytest.fixture
def stack(local_stack: LocalStack) -> LocalStack:
    """The running local stack, its resources and development token provisioned.

    Provisioned again only after moto's backends were reset (:class:`_MotoResets`).
    """
    if _MotoResets.provisioned_at != _MotoResets.count:
        local_stack.provision()
        _MotoResets.provisioned_at = _MotoResets.count
    return local_stack


@pytest.fixture
def tenant(stack: LocalStack) -> Tenant:
    """A new tenant with a new token on ``stack`` (isolates tests from each other)."""
    name = f"t-{uuid.uuid4().hex[:16]}"
    info, token = create_token(tenant=name)
    return Tenant(name=name, token=token, token_id=info.token_id)


@pytest.fixture(autouse=True)
def _remove_subscriptions_afterwards(request: pytest.FixtureRequest) -> Iterator[None]:
    """After a test that used the stack, delete every subscription it left.

    The stack lives for the whole session, so a test's subscriptions would
    otherwise get deliveries of later tests' events, and a later receiver can
    be given the port of an earlier, closed one.
    """
    yield
    if not {"stack", "local_stack"} & set(request.fixturenames):
        return
    from oms_webhooks.storage.models import SubscriptionModel
    from oms_webhooks.storage.specs import bind_tables
    from oms_webhooks.subscriptions.service import delete_subscription

    bind_tables()
    for item in SubscriptionModel.scan(SubscriptionModel.event_type.exists()):
        with contextlib.suppress(Exception):
            delete_subscription(item.tenant, item.id)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """A real HTTP receiver on 127.0.0.1 (``tests/receivers.py``)."""
    with Receiver() as r:
        yield r


@pytest.fixture
def client(stack: LocalStack, tenant: Tenant) -> requests.Session:
    """The test tenant's API session on the stack."""
    return api(stack, tenant.token)


@pytest.fixture
def setting(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[str, str], None]]:
    """``setting(name, value)`` sets ``OMS_WEBHOOKS_<NAME>`` for one test (settings re-read)."""
    from oms_webhooks.settings import get_settings

    def set_(name: str, value: str) -> None:
        monkeypatch.setenv(f"OMS_WEBHOOKS_{name.upper()}", value)
        get_settings.cache_clear()

    yield set_
    monkeypatch.undo()
    get_settings.cache_clear()


@pytest.fixture
def catcher(stack: LocalStack) -> Iterator[Catcher]:
    """A test queue behind a bus rule that catches the operational events (DESIGN §10)."""
    caught = Catcher()
    yield caught
    caught.close()
