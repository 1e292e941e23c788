"""SSRF guard for subscription target URLs (DESIGN §3, ``target_url``).

A target URL must be an absolute ``http``/``https`` URL of at most 2048
characters with a host, no user info, no whitespace or control characters and,
if given, a port in 1-65535. Its host must not be, or resolve to, a loopback,
private (RFC 1918, 100.64.0.0/10 shared address space, fc00::/7), link-local
(169.254.0.0/16 and fe80::/10: cloud metadata), multicast, reserved
(special-purpose, not globally reachable) or unspecified address. IPv6
addresses that embed an IPv4 address (IPv4-mapped ``::ffff:a.b.c.d``,
IPv4-compatible ``::a.b.c.d``, SIIT ``::ffff:0:a.b.c.d``, NAT64
``64:ff9b::/96``, 6to4 ``2002::/16``) are judged by the embedded IPv4 address.

``allow_private=True`` (the ``OMS_WEBHOOKS_ALLOW_PRIVATE_TARGETS`` setting)
allows the loopback and private categories only; link-local, multicast,
reserved and unspecified addresses are always refused.

Hosts are read the way an HTTP client (requests/urllib3 over ``getaddrinfo``)
reads them, not by hand: legacy IPv4 spellings (``2130706433``,
``0x7f000001``, ``127.1``, ``0177.0.0.1``) go through ``socket.inet_aton``,
internationalised names go through IDNA (which maps ``１２７。０。０。１`` to
``127.0.0.1``), ``localhost`` and ``*.localhost`` are loopback (RFC 6761), and
any other name is resolved with a timeout; every address it resolves to must
pass. A name that does not resolve (or whose lookup times out) is accepted:
the guard runs again before every send (DESIGN §3).

The guard alone does not stop DNS rebinding (the name resolving differently
when the client connects); a sender should connect to an address it has
checked with :func:`check_address`.
"""

from __future__ import annotations

import ipaddress
import re
import socket
import threading
import unicodedata
from typing import Final
from urllib.parse import urlsplit, urlunsplit

import idna

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

MAX_URL_LENGTH: Final = 2048
DEFAULT_PORTS: Final = {"http": 80, "https": 443}

#: Categories ``allow_private=True`` lets through; every other category is always refused.
PRIVATE_CATEGORIES: Final = frozenset({"loopback", "private"})

_PRIVATE_NETWORKS: Final = (
    ipaddress.IPv4Network("10.0.0.0/8"),
    ipaddress.IPv4Network("172.16.0.0/12"),
    ipaddress.IPv4Network("192.168.0.0/16"),
    ipaddress.IPv4Network("100.64.0.0/10"),  # RFC 6598 shared address space (carrier NAT)
    ipaddress.IPv6Network("fc00::/7"),  # unique local addresses
)
# IPv6 ranges that carry an IPv4 address in their low 32 bits.
_EMBEDDING_V4_IN_LOW_BITS: Final = (
    ipaddress.IPv6Network("64:ff9b::/96"),  # NAT64 well-known prefix (RFC 6052)
    ipaddress.IPv6Network("::ffff:0:0:0/96"),  # SIIT IPv4-translated (RFC 2765)
    ipaddress.IPv6Network("::/96"),  # IPv4-compatible (deprecated, RFC 4291)
)
# Not globally reachable per the IANA special-purpose registry, whatever the
# running Python's ipaddress thinks (its tables differ between 3.11 and 3.13).
_ALWAYS_RESERVED: Final = (
    ipaddress.IPv6Network("64:ff9b:1::/48"),  # local-use NAT64 (RFC 8215)
    ipaddress.IPv6Network("fec0::/10"),  # deprecated site-local
)
_HOST_LABEL: Final = re.compile(r"[a-z0-9_](?:[a-z0-9_-]*[a-z0-9_])?")
_PORT: Final = re.compile(r"[0-9]{1,5}")


class TargetURLRefused(ValueError):
    """The target URL breaks a rule of DESIGN §3; the message says which one.

    ``category`` names the refused address category (``"loopback"``,
    ``"private"``, ``"link-local"``, ``"multicast"``, ``"reserved"``,
    ``"unspecified"``) when the refusal is about an address, else None.
    """

    def __init__(self, message: str, *, category: str | None = None) -> None:
        super().__init__(message)
        self.category = category


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address carries (mapped, compatible, NAT64, 6to4), if any."""
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    bare = ipaddress.IPv6Address(int(ip))  # without a scope id
    if bare in (ipaddress.IPv6Address("::"), ipaddress.IPv6Address("::1")):
        return None  # the IPv6 unspecified and loopback addresses, judged as such
    if any(bare in net for net in _EMBEDDING_V4_IN_LOW_BITS):
        return ipaddress.IPv4Address(int(ip) & 0xFFFF_FFFF)
    return None


def address_category(ip: IPAddress) -> str | None:
    """The category of ``ip`` the guard cares about, or None for a global address.

    Returns one of ``"unspecified"``, ``"loopback"``, ``"link-local"``,
    ``"multicast"``, ``"private"``, ``"reserved"`` (any other address that is
    not globally reachable). An IPv6 address that embeds an IPv4 address is
    judged by the IPv4 address.
    """
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = _embedded_ipv4(ip)
        if embedded is not None:
            return address_category(embedded)
    if ip.is_unspecified:
        return "unspecified"
    if ip.is_loopback:
        return "loopback"
    if ip.is_link_local:
        return "link-local"
    if ip.is_multicast:
        return "multicast"
    if any(ip.version == net.version and ip in net for net in _PRIVATE_NETWORKS):
        return "private"
    if (
        ip.is_reserved
        or not ip.is_global
        or any(ip.version == net.version and ip in net for net in _ALWAYS_RESERVED)
    ):
        return "reserved"
    return None


def _describe(ip: IPAddress, category: str, allow_private: bool) -> str:
    """``"10.0.0.1, a private address"`` (plus the embedded IPv4 and a hint when useful)."""
    text = str(ip)
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = _embedded_ipv4(ip)
        if embedded is not None:
            text += f" (embedding IPv4 {embedded})"
    article = "an" if category[0] in "aeiou" else "a"
    text += f", {article} {category} address"
    if category == "link-local":
        text += " (cloud metadata range)"
    if allow_private and category not in PRIVATE_CATEGORIES:
        text += ", never allowed even with OMS_WEBHOOKS_ALLOW_PRIVATE_TARGETS"
    return text


#: Instance metadata services outside 169.254/16, refused even when private
#: targets are allowed: AWS's IPv6 IMDS (a ULA address, fd00:ec2::254) and
#: Alibaba Cloud's (100.100.100.200, shared address space).
METADATA_ADDRESSES: frozenset[IPAddress] = frozenset(
    {ipaddress.ip_address("fd00:ec2::254"), ipaddress.ip_address("100.100.100.200")}
)


def check_address(ip: IPAddress, *, allow_private: bool) -> None:
    """Refuse an address a webhook must not be sent to.

    Raises :class:`TargetURLRefused` (with ``category`` set) when ``ip`` is
    loopback or private (unless ``allow_private``), or link-local, multicast,
    reserved or unspecified (always). Returns None for an acceptable address.
    Rule: DESIGN §3, ``target_url``.
    """
    if ip in METADATA_ADDRESSES:
        raise TargetURLRefused(f"{ip}, a cloud metadata address", category="link-local")
    category = address_category(ip)
    if category is None or (allow_private and category in PRIVATE_CATEGORIES):
        return
    raise TargetURLRefused(f"{_describe(ip, category, allow_private)}", category=category)


def resolve_host(host: str, port: int, *, timeout: float) -> list[str]:
    """Resolve ``host`` like an HTTP client would, giving up after ``timeout`` seconds.

    Returns the distinct addresses (``getaddrinfo`` order, IPv6 possibly with
    a ``%scope``). Raises ``socket.gaierror`` when the name does not resolve
    and ``TimeoutError`` when the lookup takes longer than ``timeout``
    (``getaddrinfo`` has no timeout of its own, so it runs in a daemon thread
    that is abandoned on timeout). Tests replace this function or
    ``socket.getaddrinfo`` (see ``tests/dns.py``).
    """
    answers: list[str] = []
    failure: list[BaseException] = []

    def lookup() -> None:
        try:
            for _family, _type, _proto, _canon, sockaddr in socket.getaddrinfo(
                host, port, type=socket.SOCK_STREAM
            ):
                address = str(sockaddr[0])
                if address not in answers:
                    answers.append(address)
        except BaseException as exc:  # handed to the caller's thread
            failure.append(exc)

    worker = threading.Thread(target=lookup, name=f"resolve {host}", daemon=True)
    worker.start()
    worker.join(timeout)
    if worker.is_alive():
        raise TimeoutError(f"DNS lookup of {host!r} took longer than {timeout} s")
    if failure:
        raise failure[0]
    return list(answers)


def _refuse(message: str, category: str | None = None) -> TargetURLRefused:
    return TargetURLRefused(f"target_url {message}", category=category)


def _check_host_address(ip: IPAddress, subject: str, *, allow_private: bool) -> None:
    """:func:`check_address` for the URL's host: refused as ``target_url <subject> <reason>``."""
    try:
        check_address(ip, allow_private=allow_private)
    except TargetURLRefused as exc:
        raise _refuse(f"{subject} {exc}", exc.category) from None


def _check_characters(url: str) -> None:
    for ch in url:
        if ch.isspace() or unicodedata.category(ch)[0] in "CZ":
            raise _refuse(
                f"must not contain whitespace or control characters (found U+{ord(ch):04X})"
            )


def _split_authority(netloc: str) -> tuple[str, bool, str]:
    """``(host, bracketed, port text)`` of a URL authority without user info."""
    if netloc.startswith("["):
        end = netloc.find("]")
        if end < 0:
            raise _refuse("has an unterminated IPv6 literal")
        host, rest = netloc[1:end], netloc[end + 1 :]
        if rest and not rest.startswith(":"):
            raise _refuse(f"has an invalid authority {netloc!r}")
        return host, True, rest[1:]
    host, _, port = netloc.partition(":")
    if ":" in port:
        raise _refuse(f"has an invalid authority {netloc!r}")
    return host, False, port


def _parse_port(text: str, scheme: str) -> int:
    if not text:
        return DEFAULT_PORTS[scheme]
    if not _PORT.fullmatch(text) or not 1 <= int(text) <= 65535:
        raise _refuse(f"port {text!r} is not a number from 1 to 65535")
    return int(text)


def _ascii_forms(host: str) -> list[str]:
    """The ASCII (IDNA) spellings an HTTP client may turn ``host`` into, lowercased."""
    if host.isascii():
        return [host.lower()]
    forms: list[str] = []
    try:  # requests' own encoder (IDNA 2008 with UTS 46 mapping)
        forms.append(idna.encode(host, uts46=True).decode("ascii").lower())
    except (idna.IDNAError, UnicodeError, ValueError):
        raise _refuse(f"host {host!r} is not a valid internationalised domain name") from None
    try:
        stdlib_form = host.encode("idna").decode("ascii").lower()  # what getaddrinfo uses
    except UnicodeError:
        raise _refuse(f"host {host!r} is not a valid internationalised domain name") from None
    if stdlib_form not in forms:
        forms.append(stdlib_form)
    return forms


def _check_name_syntax(shown: str, name: str) -> None:
    bare = name[:-1] if name.endswith(".") else name
    labels = bare.split(".")
    if len(bare) > 253 or not all(
        _HOST_LABEL.fullmatch(label) and len(label) <= 63 for label in labels
    ):
        raise _refuse(f"host {shown!r} is not a valid host name")


def _legacy_ipv4(name: str) -> ipaddress.IPv4Address | None:
    """The IPv4 address a client reads ``name`` as (inet_aton forms included), if any."""
    bare = name[:-1] if name.endswith(".") else name
    if not bare or not all(ch in "0123456789abcdefx." for ch in bare):
        return None
    try:
        return ipaddress.IPv4Address(socket.inet_aton(bare))
    except OSError:
        return None


def _check_name(
    shown: str, name: str, port: int, *, allow_private: bool, resolve: bool, timeout: float
) -> None:
    _check_name_syntax(shown, name)
    bare = name[:-1] if name.endswith(".") else name
    if bare == "localhost" or bare.endswith(".localhost"):
        if not allow_private:
            raise _refuse(f"host {shown!r} is a loopback name (localhost)", "loopback")
        return
    literal = _legacy_ipv4(name)
    if literal is not None:
        _check_host_address(literal, f"host {shown!r} is", allow_private=allow_private)
        return
    if not resolve:
        return
    try:
        addresses = resolve_host(name, port, timeout=timeout)
    except (OSError, UnicodeError):
        return  # does not resolve now (or timed out): the guard runs again at send time
    for address in addresses:
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            raise _refuse(f"host {shown!r} resolves to {address!r}, not an IP address") from None
        _check_host_address(ip, f"host {shown!r} resolves to", allow_private=allow_private)


def validate_target_url(
    url: str, *, allow_private: bool, resolve: bool = True, timeout: float | None = None
) -> str:
    """Check a subscription's ``target_url`` (DESIGN §3); return it normalised.

    The normalised form (:func:`normalize_target_url`) is what is stored, so
    ``HTTP://Partner.example:443`` and ``https://partner.example/`` are one
    target for the uniqueness rule.

    ``allow_private`` lets loopback and private addresses through (never
    link-local, multicast, reserved or unspecified ones). ``resolve=False``
    skips the DNS lookup (literal addresses and ``localhost`` names are still
    judged). ``timeout`` bounds the DNS lookup in seconds (default: the
    ``OMS_WEBHOOKS_DNS_TIMEOUT_SECONDS`` setting); a name that does not
    resolve in time is accepted.

    Raises :class:`TargetURLRefused` with a message naming the broken rule
    (and the address category, for address refusals).
    """
    if not isinstance(url, str):
        raise _refuse("must be a string")
    if not url:
        raise _refuse("must not be empty")
    if len(url) > MAX_URL_LENGTH:
        raise _refuse(f"must be at most {MAX_URL_LENGTH} characters (got {len(url)})")
    _check_characters(url)
    try:
        parts = urlsplit(url)
    except ValueError as exc:
        raise _refuse(f"is not a valid URL ({exc})") from None
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS:
        raise _refuse("must be an absolute http or https URL")
    if not parts.netloc:
        raise _refuse("must have a host")
    if "@" in parts.netloc:
        raise _refuse("must not contain user info (user:password@)")
    host, bracketed, port_text = _split_authority(parts.netloc)
    if not host:
        raise _refuse("must have a host")
    port = _parse_port(port_text, scheme)
    if "%" in host or "\\" in host:
        raise _refuse(f"host {host!r} must not contain '%' or '\\'")
    if bracketed:
        try:
            ip = ipaddress.IPv6Address(host)
        except ValueError:
            raise _refuse(f"host [{host}] is not a valid IPv6 address") from None
        _check_host_address(ip, f"host [{host}] is", allow_private=allow_private)
        return normalize_target_url(url)
    if timeout is None:
        from oms_webhooks.settings import get_settings

        timeout = get_settings().dns_timeout_seconds
    for name in _ascii_forms(host):
        _check_name(host, name, port, allow_private=allow_private, resolve=resolve, timeout=timeout)
    return normalize_target_url(url)


def normalize_target_url(url: str) -> str:
    """One spelling per target: the form stored and compared for uniqueness.

    Lowercases the scheme and host, drops a trailing dot of the host, the
    default port (80/443), an empty port and the fragment (never sent), and
    gives an empty path ``/`` (RFC 3986 §6.2.2-6.2.3 normalisations).
    ``HTTP://Partner.Example.:80/#x`` → ``http://partner.example/``. The
    path and query keep their case: servers may distinguish them.
    """
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    host, bracketed, port = _split_authority(parts.netloc)
    host = host.lower().rstrip(".") if not bracketed else host.lower()
    if port and int(port) == DEFAULT_PORTS[scheme]:
        port = ""
    netloc = f"[{host}]" if bracketed else host
    if port:
        netloc = f"{netloc}:{int(port)}"
    return urlunsplit((scheme, netloc, parts.path or "/", parts.query, ""))
