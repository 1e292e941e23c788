"""The process environment of a local stack: boto3 pointed at moto as its default account.

The Lambda handlers read their AWS endpoint, region and credentials from the
process environment, as boto3 does; :func:`local_aws_environ` says what to
change, :func:`apply_environ` / :func:`environ` change it (and clear the
cached settings).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Mapping

from oms_webhooks.settings import get_settings
from oms_webhooks_local.provision import LOCAL_ACCESS_KEY_ID, LOCAL_REGION, LOCAL_SECRET_ACCESS_KEY

#: Variables that would point boto3 elsewhere or sign as someone else.
_SCRUBBED_PREFIXES = ("AWS_ENDPOINT_URL_",)
_SCRUBBED = (
    "AWS_PROFILE",
    "AWS_SESSION_TOKEN",
    "AWS_SECURITY_TOKEN",
    "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS",
)
#: Lets subscriptions target private addresses (a receiver on 127.0.0.1).
ALLOW_PRIVATE_ENV = "OMS_WEBHOOKS_ALLOW_PRIVATE_TARGETS"
#: Values pydantic reads as False for a boolean setting.
_FALSE_VALUES = frozenset({"0", "off", "f", "false", "n", "no"})


def allow_private_environ() -> dict[str, str | None]:
    """``OMS_WEBHOOKS_ALLOW_PRIVATE_TARGETS=true``, unless it is set to a false value."""
    allow = os.environ.get(ALLOW_PRIVATE_ENV, "").strip().lower()
    return {} if allow in _FALSE_VALUES else {ALLOW_PRIVATE_ENV: "true"}


def local_aws_environ(endpoint_url: str) -> dict[str, str | None]:
    """The environment changes that point boto3 at ``endpoint_url`` as moto's default account.

    Returns:
        variable → value, None meaning "unset it": region ``us-east-1``,
        credentials ``testing``/``testing``, ``AWS_ENDPOINT_URL``, and no
        profile, session token or per-service endpoint override.
    """
    changes: dict[str, str | None] = {
        "AWS_ENDPOINT_URL": endpoint_url,
        "AWS_REGION": LOCAL_REGION,
        "AWS_DEFAULT_REGION": LOCAL_REGION,
        "AWS_ACCESS_KEY_ID": LOCAL_ACCESS_KEY_ID,
        "AWS_SECRET_ACCESS_KEY": LOCAL_SECRET_ACCESS_KEY,
        # DESIGN §6: the router's subscription cache is off on the local stack.
        "OMS_WEBHOOKS_ROUTER_CACHE_SECONDS": "0",
    }
    for name in _SCRUBBED:
        changes[name] = None
    for name in os.environ:
        if name.startswith(_SCRUBBED_PREFIXES):
            changes[name] = None
    return changes


def apply_environ(changes: Mapping[str, str | None]) -> dict[str, str | None]:
    """Apply ``changes`` to ``os.environ`` (None unsets); return what to restore them with.

    Clears the cached settings (:func:`~oms_webhooks.settings.get_settings`).
    """
    previous = {name: os.environ.get(name) for name in changes}
    for name, value in changes.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value
    get_settings.cache_clear()
    return previous


@contextlib.contextmanager
def environ(changes: Mapping[str, str | None]) -> Iterator[None]:
    """Apply ``changes`` to ``os.environ`` for the ``with`` block, then restore it."""
    previous = apply_environ(changes)
    try:
        yield
    finally:
        apply_environ(previous)


__all__ = [
    "ALLOW_PRIVATE_ENV",
    "allow_private_environ",
    "apply_environ",
    "environ",
    "local_aws_environ",
]
