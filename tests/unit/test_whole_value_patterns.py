"""Whole-value validation (issue 13, item 2): a trailing newline is never "the rest".

Python's ``$`` also matches before a final ``\\n``, so ``re.match(r"^...$")``
accepted ``"X-Partner\\n"`` as a header name (201, then every send failed) and
``"acme\\n"`` as a tenant. Every validator that judges a whole value must
refuse a value with anything after the valid part.
"""

from __future__ import annotations

import pytest

from oms_webhooks.api.schemas import check_additional_headers
from oms_webhooks.api.tokens import TokenError, validate_tenant
from oms_webhooks.delivery.request.url_guard import TargetURLRefused, validate_target_url
from oms_webhooks.routing.event_types import normalize_event_type

TRAILERS = ["\n", "\r\n", "\r", "\x00", " ", "\t", "\u2028", "\x0b"]


@pytest.mark.parametrize("trailer", TRAILERS)
def test_a_header_name_with_anything_after_it_is_refused(trailer: str) -> None:
    assert check_additional_headers({"X-Partner": "v"}) == {"X-Partner": "v"}
    with pytest.raises(ValueError, match="not a valid header name"):
        check_additional_headers({f"X-Partner{trailer}": "v"})


@pytest.mark.parametrize("trailer", TRAILERS)
def test_a_tenant_name_with_anything_after_it_is_refused(trailer: str) -> None:
    assert validate_tenant("acme.eu-1") == "acme.eu-1"
    with pytest.raises(TokenError, match="invalid tenant name"):
        validate_tenant(f"acme{trailer}")


@pytest.mark.parametrize("trailer", TRAILERS)
def test_an_event_type_with_anything_after_it_is_refused(trailer: str) -> None:
    with pytest.raises(ValueError, match="unknown event type"):
        normalize_event_type(f"package.created{trailer}")


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:80\n/",
        "http://127.0.0.1:8\u0660/",  # an Arabic-Indic zero in the port
        "http://partner.example\n:8080/",
        "http://partner\u2028.example/",
    ],
)
def test_a_target_url_with_a_bad_port_or_host_is_refused(url: str) -> None:
    with pytest.raises(TargetURLRefused):
        validate_target_url(url, allow_private=True, resolve=False)
