"""DNS pinning of one attempt (DESIGN §3: the guard runs again before every send).

The host is resolved once per attempt (:func:`oms_webhooks.delivery.request.url_guard.resolve_host`,
with the DNS timeout) and *every* address it resolves to is vetted with
:func:`~oms_webhooks.delivery.request.url_guard.check_address` (:func:`vet`); one bad address
refuses the attempt before any connection. The connection then goes to a vetted address
itself (:class:`PinnedAddressAdapter`), never resolving the name again, so a DNS answer
that changes between check and connect (DNS rebinding) cannot redirect it. The ``Host``
header, TLS SNI and certificate verification still use the host name.

Why our own adapter and not ``requests-hardened`` (1.3.0, read for this
choice): its policy is fixed (``ip_filter_allow_loopback_ips`` lets loopback
through, never private networks, and link-local is refused only through
``is_private``), so it cannot express ``allow_private`` (loopback and private
allowed, link-local/metadata never); it vets only the *first* address
``getaddrinfo`` returns, calls ``getaddrinfo`` without a timeout and turns our
refusal categories into a bare ``InvalidIPAddress``. The technique it uses is
small and sound, so :class:`PinnedAddressAdapter` does the same in a few lines
(``HTTPAdapter.build_connection_pool_key_attributes``: the pool's host becomes
the vetted IP; ``server_hostname`` and ``assert_hostname`` keep SNI and
certificate checks on the name; requests >= 2.32.2) with our own policy and
no new dependency.

Addresses are tried in ``getaddrinfo`` order by :func:`oms_webhooks.delivery.request.sender.send`;
the next one is tried only when connecting to one fails outright (refused, unreachable:
nothing was sent), so an attempt never POSTs twice.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import urlsplit

import requests
import urllib3.connectionpool
from requests.adapters import HTTPAdapter

from oms_webhooks.delivery.request.transport import (
    AttemptDeadline,
    DeadlineHTTPConnectionPool,
    DeadlineHTTPSConnectionPool,
)
from oms_webhooks.delivery.request.url_guard import (
    DEFAULT_PORTS,
    TargetURLRefused,
    check_address,
    resolve_host,
)

if TYPE_CHECKING:  # typeshed-only names (types-requests)
    from requests.adapters import _HostParams, _PoolKwargs

__all__ = ["PinnedAddressAdapter", "Refused", "vet"]


class PinnedAddressAdapter(HTTPAdapter):
    """A transport adapter that connects to one given IP address, whatever the URL's host.

    The urllib3 pool's host becomes ``address``; for ``https`` the host name of
    the URL is kept as ``server_hostname`` (TLS SNI) and ``assert_hostname``
    (certificate check), so TLS is verified against the name, not the IP. The
    ``Host`` header is the caller's business (:func:`~oms_webhooks.delivery.request.sender.send`
    sets it from the URL). Needs requests >= 2.32.2 (``build_connection_pool_key_attributes``).
    """

    def __init__(self, address: str, deadline: AttemptDeadline | None = None) -> None:
        self.deadline = deadline
        super().__init__(max_retries=0)
        self.address = address

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        """requests' pool manager, with the deadline's pool classes (:mod:`.transport`)."""
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = {
            "http": DeadlineHTTPConnectionPool,
            "https": DeadlineHTTPSConnectionPool,
        }

    def get_connection_with_tls_context(
        self,
        request: requests.PreparedRequest,
        verify: bool | str | None,
        proxies: Mapping[str, str] | None = None,
        cert: tuple[str, str] | str | None = None,
    ) -> urllib3.connectionpool.ConnectionPool:
        """requests' pool for ``request``; its new connections get this attempt's deadline."""
        pool = super().get_connection_with_tls_context(request, verify, proxies, cert)
        if isinstance(pool, DeadlineHTTPConnectionPool | DeadlineHTTPSConnectionPool):
            pool.deadline = self.deadline
        return pool

    def build_connection_pool_key_attributes(
        self,
        request: requests.PreparedRequest,
        verify: bool | str,
        cert: str | tuple[str, str] | None = None,
    ) -> tuple[_HostParams, _PoolKwargs]:
        """The pool key of requests, with the host replaced by the pinned address."""
        host_params, pool_kwargs = super().build_connection_pool_key_attributes(
            request, verify, cert
        )
        hostname = host_params["host"]
        if host_params["scheme"] == "https":
            # Valid HTTPSConnectionPool arguments the stubs' TypedDict does not list.
            pool_kwargs["server_hostname"] = hostname  # type: ignore[typeddict-unknown-key]
            pool_kwargs["assert_hostname"] = hostname  # type: ignore[typeddict-unknown-key]
        host_params["host"] = self.address
        return host_params, pool_kwargs


class Refused(Exception):
    """An attempt ends before any connection (bad URL, DNS failure, refused address).

    ``failure`` is ``"connection"`` for a DNS failure (it counts against the
    target's circuit breaker), None for a refused URL or address.
    """

    def __init__(self, message: str, failure: Literal["connection"] | None = None) -> None:
        super().__init__(message)
        self.failure = failure


def vet(url: str, *, dns_timeout: float, allow_private: bool) -> list[str]:
    """Resolve the URL's host once and check every address (DESIGN §3, at send time).

    ``dns_timeout`` bounds the lookup, in seconds; ``allow_private`` as for
    :func:`~oms_webhooks.delivery.request.url_guard.check_address`. Returns the
    addresses in resolver order. Raises :class:`Refused` with the attempt's
    error: ``"DNS lookup failed (...)"`` or ``"target refused: ..."``.
    """
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = parts.port or DEFAULT_PORTS[parts.scheme]
    try:
        addresses = resolve_host(host, port, timeout=dns_timeout)
    except TimeoutError:
        raise Refused(
            f"DNS lookup failed (timed out after {dns_timeout} s)", "connection"
        ) from None
    except (OSError, UnicodeError) as exc:
        raise Refused(f"DNS lookup failed ({exc})", "connection") from None
    if not addresses:
        raise Refused("DNS lookup failed (no address)", "connection")
    literal = _is_ip_literal(host)
    for address in addresses:
        try:
            check_address(ipaddress.ip_address(address), allow_private=allow_private)
        except ValueError as exc:  # TargetURLRefused, or not an IP address at all
            reason = str(exc) if isinstance(exc, TargetURLRefused) else f"{address!r}?"
            prefix = "" if literal else "resolves to "
            raise Refused(f"target refused: {prefix}{reason}") from None
    return addresses


def _is_ip_literal(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True
