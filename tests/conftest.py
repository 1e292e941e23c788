"""Suite-wide guards: no test ever connects or resolves beyond loopback.

Every ``socket.connect`` to an address outside 127.0.0.0/8 or ::1 fails the
test, and ``getaddrinfo`` answers only for loopback names and IP literals:
a test that needs another name resolved fakes the answer (see
``tests/dns.py``). DESIGN §1: tests only ever open connections to loopback.
"""

from __future__ import annotations

import ipaddress
import socket
from typing import Any

import pytest

_real_connect = socket.socket.connect
_real_connect_ex = socket.socket.connect_ex
_real_getaddrinfo = socket.getaddrinfo
_LOOPBACK_NAMES = {"localhost", "localhost.", "ip6-localhost"}


class NonLoopbackConnection(AssertionError):
    """A test tried to reach something other than loopback."""


def _check_address(address: Any) -> None:
    if isinstance(address, tuple) and address:
        host = address[0]
        try:
            ip = ipaddress.ip_address(host.split("%", 1)[0] if isinstance(host, str) else host)
        except ValueError:
            raise NonLoopbackConnection(f"connect to unresolved name {host!r}") from None
        if not ip.is_loopback:
            raise NonLoopbackConnection(f"test tried to connect to {host!r}")


def _guarded_connect(self: socket.socket, address: Any) -> None:
    if self.family in (socket.AF_INET, socket.AF_INET6):
        _check_address(address)
    return _real_connect(self, address)


def _guarded_connect_ex(self: socket.socket, address: Any) -> int:
    if self.family in (socket.AF_INET, socket.AF_INET6):
        _check_address(address)
    return _real_connect_ex(self, address)


def _guarded_getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
    if host is None:
        return _real_getaddrinfo(host, *args, **kwargs)
    name = host.decode() if isinstance(host, bytes) else str(host)
    try:
        ipaddress.ip_address(name.split("%", 1)[0])
        is_literal = True
    except ValueError:
        is_literal = False
    if not is_literal and name.lower() not in _LOOPBACK_NAMES:
        raise socket.gaierror(socket.EAI_NONAME, f"DNS disabled in tests (fake it): {name}")
    return _real_getaddrinfo(host, *args, **kwargs)


socket.socket.connect = _guarded_connect  # type: ignore[method-assign]
socket.socket.connect_ex = _guarded_connect_ex  # type: ignore[method-assign]
socket.getaddrinfo = _guarded_getaddrinfo


@pytest.fixture(autouse=True)
def _aws_test_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fake credentials so that no test can sign a request for a real account."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.delenv("AWS_PROFILE", raising=False)


def _keep_hypothesis_from_parsing_modules_mid_test() -> None:
    """Stop Hypothesis from ``ast.parse``-ing newly imported modules while a test runs.

    CPython 3.11 keeps the AST converter's recursion depth in state shared by all
    threads (python/cpython#106905, gh-95185): two threads building ASTs at once
    raise ``SystemError: AST constructor recursion depth mismatch``. Hypothesis
    (6.1xx) parses every newly imported local module for constants inside a
    property test, while the in-process local stack of the same xdist worker runs
    moto's server, whose werkzeug router compiles its URL rules from ASTs in its
    own thread; the collision failed a property test about once in ten loaded
    runs. The constants are only extra seeds, so the suite goes without them.
    """
    try:
        from hypothesis.internal.conjecture import providers
    except ImportError:  # pragma: no cover - Hypothesis is a test dependency
        return
    if hasattr(providers, "_get_local_constants"):
        frozen = providers._local_constants
        providers._get_local_constants = lambda: frozen


_keep_hypothesis_from_parsing_modules_mid_test()


def _no_hypothesis_deadline() -> None:
    """No per-example time limit in property tests (Hypothesis' default is 200 ms).

    A deadline is a timing assertion: on CI's 2 shared cores, beside the local
    stack's threads, one example of ``test_schedule_accepted_iff_worst_case_fits``
    took longer at load 9. Speed is measured by the benchmarks, not asserted here.
    """
    from hypothesis import settings

    settings.register_profile("shared-cores", deadline=None)
    settings.load_profile("shared-cores")


_no_hypothesis_deadline()


#: Fixtures that start a local stack in this process (tests/functional, tests/fuzz).
_LOCAL_STACK_FIXTURES = frozenset({"local_stack", "fuzz_stack"})


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark ``slow`` every test that runs a local stack, so ``pytest -m "not slow"`` is quick.

    A test is slow when it uses a local-stack fixture (directly or through
    ``stack``/``client``/``tenant``), when its module starts the stack as the
    CLI's process (``tests/functional/local_process.py``), or when it says so
    itself (``@pytest.mark.slow``: the benchmark smoke runs, the CLI's
    ``local`` command). README "The two commands" names the quick loop.
    """
    for item in items:
        module = getattr(item, "module", None)
        starts_process = hasattr(module, "start_stack") or hasattr(module, "running_stack")
        if _LOCAL_STACK_FIXTURES & set(getattr(item, "fixturenames", ())) or starts_process:
            item.add_marker(pytest.mark.slow)
