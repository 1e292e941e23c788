"""Keep a subscription's own secrets out of what a partner answered.

A partner's endpoint (or its error page, or a debugging proxy) may echo the
request it got: the ``X-Api-Key``-style header values, the basic-auth
``Authorization`` header, sometimes its own copy of the signing secret. The
response excerpt is stored with the attempt and shown by the delivery log
for the whole retention, and ping and resend answer with it: the secret
would leak to anyone who can read the log (issue 13).

:func:`secret_strings` lists what must never come back: the values of the
credential-like headers (the ones the API itself shows as ``[redacted]``),
the basic-auth password, ``user:password`` and its base64 form, and the
signing secrets (with and without their ``whsec_`` prefix).
:func:`redact` replaces each of them, as sent and as an echo commonly
re-encodes it (JSON string escapes, HTML escapes, percent-encoding), with
:data:`REDACTED`; a secret cut by the excerpt's end is redacted too.
Values shorter than :data:`MIN_SECRET_CHARS` are not looked for: they would
match ordinary text everywhere.

:func:`url_secrets` lists the parts of the target URL that are not public:
its query (whole, and each value as sent and decoded), fragment and user
info. DESIGN §10 keeps only scheme, host, port and path of a target in
operational events, but a partner that answers with our request line (an echo
server, or a server that quotes a line it cannot parse) would carry the query,
which may hold a credential (``?api_key=...``), into the attempt's error and
excerpt: :func:`~oms_webhooks.delivery.request.sender.send` redacts them from
everything it returns.
"""

from __future__ import annotations

import base64
import html
import json
from collections.abc import Iterable, Mapping
from dataclasses import replace
from typing import TYPE_CHECKING, Final
from urllib.parse import quote, quote_plus, unquote, unquote_plus, urlsplit

if TYPE_CHECKING:
    from oms_webhooks.delivery.request.sender import AttemptResult

__all__ = [
    "MIN_SECRET_CHARS",
    "REDACTED",
    "is_sensitive_header",
    "redact",
    "redact_result",
    "secret_strings",
    "url_secrets",
]

#: What the API shows instead of the value of a credential-like header. Sent
#: back unchanged in a PUT or PATCH, it keeps the stored value.
REDACTED: Final = "[redacted]"
_SENSITIVE_NAMES = frozenset({"authorization", "proxy-authorization", "cookie"})
_SENSITIVE_PARTS = ("token", "secret", "key", "password", "passwd", "auth", "credential", "session")

#: Shortest secret value looked for, in characters.
MIN_SECRET_CHARS: Final = 4
_WHSEC_PREFIX: Final = "whsec_"


def is_sensitive_header(name: str) -> bool:
    """Whether a header's value is a credential the API must not echo (``X-Api-Key``...)."""
    lower = name.lower()
    return lower in _SENSITIVE_NAMES or any(part in lower for part in _SENSITIVE_PARTS)


def secret_strings(
    *,
    headers: Mapping[str, str] | None = None,
    auth: tuple[str, str] | None = None,
    signing_secrets: Iterable[str | None] = (),
) -> list[str]:
    """The secret strings of one request (module docstring), longest first, no duplicates.

    Args:
        headers: the request headers sent (the subscription's additional
            headers among them); only credential-like ones count.
        auth: ``(username, password)`` of basic auth, or None.
        signing_secrets: the signing secrets in use (current, previous).
    """
    found: set[str] = set()
    for name, value in (headers or {}).items():
        if is_sensitive_header(name):
            found.add(value)
            scheme, _, credentials = value.partition(" ")
            if credentials and scheme.isalpha():  # "Bearer <token>": the token alone too
                found.add(credentials.strip())
    if auth is not None:
        username, password = auth
        pair = f"{username}:{password}"
        found.update({password, pair, base64.b64encode(pair.encode("utf-8")).decode("ascii")})
    for secret in signing_secrets:
        if secret:
            found.add(secret)
            if secret.startswith(_WHSEC_PREFIX):
                found.add(secret[len(_WHSEC_PREFIX) :])
    return sorted((s for s in found if len(s) >= MIN_SECRET_CHARS), key=len, reverse=True)


def url_secrets(*urls: str) -> list[str]:
    """The parts of target URLs a partner's echo must not carry (module docstring).

    For each URL (the one configured and the one sent, which requests may have
    re-quoted): the whole query and fragment, each query value, raw and decoded,
    and the user info (``user:password`` and the password), raw and decoded;
    longest first, none shorter than :data:`MIN_SECRET_CHARS`.

    >>> url_secrets("https://h.example/hook?api_key=k%2F123&v=1")
    ['api_key=k%2F123&v=1', 'k%2F123', 'k/123']
    """
    found: set[str] = set()
    for url in urls:
        parts = urlsplit(url)
        found.update({parts.query, parts.fragment})
        for pair in parts.query.split("&"):
            value = pair.partition("=")[2]
            found.update({value, unquote_plus(value)})
        userinfo, at, _ = parts.netloc.rpartition("@")
        if at:
            password = userinfo.partition(":")[2]
            found.update({userinfo, unquote(userinfo), password, unquote(password)})
    return sorted((s for s in found if len(s) >= MIN_SECRET_CHARS), key=lambda s: (-len(s), s))


def _spellings(secret: str) -> set[str]:
    """``secret`` as sent and as echoes commonly re-encode it."""
    forms = {
        secret,
        json.dumps(secret)[1:-1],
        json.dumps(secret, ensure_ascii=False)[1:-1],
        json.dumps(secret).replace("/", "\\/")[1:-1],
        html.escape(secret),
        html.escape(secret, quote=False),
        quote(secret, safe=""),
        quote_plus(secret, safe=""),
    }
    return {form for form in forms if len(form) >= MIN_SECRET_CHARS}


def redact(text: str, secrets: Iterable[str]) -> str:
    """``text`` with every spelling of every secret replaced by :data:`REDACTED`.

    A text that ends with the start of a secret (an excerpt cut inside it)
    has that end replaced too, when it is at least
    :data:`MIN_SECRET_CHARS` long.

    >>> redact('{"x-api-key": "k-123456", "n": 1}', ["k-123456"])
    '{"x-api-key": "[redacted]", "n": 1}'
    >>> redact("... Authorization: Basic dXNlcjpw", ["dXNlcjpwYXNz"])
    '... Authorization: Basic [redacted]'
    """
    forms = sorted({f for s in secrets for f in _spellings(s)}, key=len, reverse=True)
    if not text or not forms:
        return text
    for form in forms:
        text = text.replace(form, REDACTED)
    for form in forms:  # a secret cut by the end of the excerpt: its longest start there
        position = text.find(form[0], max(0, len(text) - len(form) + 1))
        while position != -1 and len(text) - position >= MIN_SECRET_CHARS:
            if form.startswith(text[position:]):
                return text[:position] + REDACTED
            position = text.find(form[0], position + 1)
    return text


def redact_result(result: AttemptResult, secrets: Iterable[str], *, limit: int) -> AttemptResult:
    """``result`` with its response excerpt and error redacted (excerpt kept ≤ ``limit`` bytes)."""
    secrets = list(secrets)
    if not secrets:
        return result
    from oms_webhooks.delivery.request.sender import (
        excerpt,  # loaded by then: the result came from it
    )

    content = redact(result.response_excerpt, secrets)
    if content != result.response_excerpt:
        content = excerpt(content.encode("utf-8"), limit)
    error = redact(result.error, secrets) if result.error else result.error
    return replace(result, response_excerpt=content, error=error)
