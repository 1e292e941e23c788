"""Where private targets are allowed (the local stack), say when one is public.

The local stack allows loopback and private targets
(``OMS_WEBHOOKS_ALLOW_PRIVATE_TARGETS``), and it delivers for real: a
subscription to ``http://example.com/`` (the vendor documentation's own
example) would POST signed OMS data from a laptop to the internet. A
deployment never allows private targets, so this is only looked at where
they are allowed (issue 13). The API logs the warning; on the local stack
the API's log is the stack's output.
"""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlsplit

from oms_webhooks.delivery.request.url_guard import DEFAULT_PORTS, address_category, resolve_host

__all__ = ["public_addresses", "public_target_warning"]


def public_addresses(url: str, *, timeout: float) -> list[str]:
    """The globally reachable addresses ``url``'s host is or resolves to.

    ``[]`` for a private, loopback... host and for one that does not resolve
    within ``timeout`` seconds (nothing to warn about yet). Never raises for
    a URL the guard accepted.
    """
    try:
        parts = urlsplit(url)
        host, port = parts.hostname or "", parts.port or DEFAULT_PORTS.get(parts.scheme, 80)
    except ValueError:
        return []
    try:
        candidates = [str(ipaddress.ip_address(host))]
    except ValueError:
        try:
            candidates = resolve_host(host, port, timeout=timeout)
        except (OSError, TimeoutError, UnicodeError, socket.gaierror):
            return []
    public = []
    for text in candidates:
        try:
            ip = ipaddress.ip_address(text.split("%", 1)[0])
        except ValueError:
            continue
        if address_category(ip) is None:
            public.append(str(ip))
    return public


def public_target_warning(url: str, *, allow_private: bool, timeout: float) -> str | None:
    """The warning to log for a subscription to ``url``, or None.

    Only where private targets are allowed (the local stack): there a public
    target is most likely an example copied from documentation.
    """
    if not allow_private:
        return None
    addresses = public_addresses(url, timeout=timeout)
    if not addresses:
        return None
    return (
        f"target_url {url} is a public address ({', '.join(addresses)}): this local stack "
        "will POST signed deliveries there from this machine; use a local receiver "
        "(oms-webhooks receiver --port 9000) unless you mean it"
    )
