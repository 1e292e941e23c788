"""Fixtures of the API fuzz run: a local stack that cannot deliver.

The fuzz module gets its own :class:`~oms_webhooks_local.stack.LocalStack`,
started for the module and stopped after it, **without background workers**:
no router or dispatcher poller runs behind this API, so nothing the fuzzer
does can turn into a delivery, whatever target URLs it invents. (The
operations that send at once, the manual resend and ping, are left out of
the run; the suite's socket guard, tests/conftest.py, refuses anything but
loopback besides.) moto's backends are process-wide, so this stack shares
its tables with the functional suite's stack if that one runs in the same
worker; it only adds a second door onto them for the length of this module.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from oms_webhooks_local.stack import LocalStack


@pytest.fixture(scope="module")
def fuzz_stack() -> Iterator[LocalStack]:
    """An in-process local stack (API and moto on free ports) with no delivery workers."""
    with LocalStack(api_port=0, aws_port=0, worker_factories=[]) as stack:
        yield stack
