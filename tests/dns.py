"""Fake DNS answers for tests (DESIGN §1: a DNS answer in a test is faked).

``fake_dns({"partner.example": ["93.184.215.14"]})`` replaces
``socket.getaddrinfo`` for the duration of a ``with`` block: names in the map
(case and a trailing dot ignored) get the given addresses, IP literals and
loopback names go to the resolver underneath (the suite's guarded one, see
tests/conftest.py), and every other name raises ``socket.gaierror``.

Patching ``getaddrinfo`` itself rather than ``url_guard.resolve_host`` keeps
the real lookup path under test (its timeout thread included) and gives any
other code, an HTTP client say, the same answers; the conftest still fails a
test that connects to a non-loopback address it was given.

A map value is a list of addresses, or a callable returning one (it may sleep
or raise, to fake a slow or failing resolver).
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any
from unittest import mock

Answer = Sequence[str] | Callable[[], Sequence[str]]
_LOOPBACK_NAMES = frozenset({"localhost", "ip6-localhost"})


def _normalise(name: str) -> str:
    name = name.lower()
    return name[:-1] if name.endswith(".") else name


def _is_ip_literal(name: str) -> bool:
    try:
        ipaddress.ip_address(name.split("%", 1)[0])
    except ValueError:
        return False
    return True


def _addrinfo(
    addresses: Sequence[str], port: Any, family: int, type_: int, proto: int
) -> list[tuple[Any, ...]]:
    port_number = int(port) if port is not None else 0
    sock_type = type_ or socket.SOCK_STREAM
    results: list[tuple[Any, ...]] = []
    for address in addresses:
        if ipaddress.ip_address(address.split("%", 1)[0]).version == 4:
            if family in (socket.AF_UNSPEC, socket.AF_INET):
                results.append((socket.AF_INET, sock_type, proto, "", (address, port_number)))
        elif family in (socket.AF_UNSPEC, socket.AF_INET6):
            sockaddr = (address, port_number, 0, 0)
            results.append((socket.AF_INET6, sock_type, proto, "", sockaddr))
    return results


@contextmanager
def fake_dns(answers: Mapping[str, Answer]) -> Iterator[list[str]]:
    """Answer ``socket.getaddrinfo`` from ``answers`` inside the block.

    Yields the list of mapped names looked up so far (in order), so that a
    test can assert that a lookup happened, or did not.
    """
    table = {_normalise(name): answer for name, answer in answers.items()}
    underneath = socket.getaddrinfo
    queried: list[str] = []

    def getaddrinfo(
        host: Any,
        port: Any,
        family: int = 0,
        type: int = 0,
        proto: int = 0,
        flags: int = 0,
    ) -> list[tuple[Any, ...]]:
        if host is None:
            return underneath(host, port, family, type, proto, flags)
        name = host.decode() if isinstance(host, bytes) else str(host)
        key = _normalise(name)
        if key in table:
            queried.append(name)
            answer = table[key]
            results = _addrinfo(answer() if callable(answer) else answer, port, family, type, proto)
            if not results:
                raise socket.gaierror(socket.EAI_NONAME, f"fake DNS: no address for {name}")
            return results
        if _is_ip_literal(name) or key in _LOOPBACK_NAMES:
            return underneath(host, port, family, type, proto, flags)
        raise socket.gaierror(socket.EAI_NONAME, f"fake DNS: {name} is not in the map")

    with mock.patch.object(socket, "getaddrinfo", getaddrinfo):
        yield queried
