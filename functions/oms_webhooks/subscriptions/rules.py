"""Subscription rules: the checks and conversions of a request, pure (no storage).

:mod:`oms_webhooks.subscriptions.service` applies them to a
:class:`~oms_webhooks.storage.models.subscriptions.SubscriptionModel` before
any write (DESIGN §3): the worst case of the retry schedule ends within the
delivery retention; write-only secrets are sealed, keep their stored value
when omitted and are removed by ``null``; ``Authorization`` cannot be an
additional header when basic auth is set; a token's scope bounds the event
types it may subscribe to. Each raises a
:class:`~oms_webhooks.errors.ServiceError` (a 4xx) naming the field.
"""

from __future__ import annotations

import base64
import secrets
from typing import Any

from pydantic import SecretStr

from oms_webhooks.api.schemas import SubscriptionIn
from oms_webhooks.delivery.request.redaction import REDACTED
from oms_webhooks.delivery.retry.schedule import validate_schedule
from oms_webhooks.errors import Forbidden, ValidationFailed
from oms_webhooks.settings import get_settings
from oms_webhooks.storage.models import BasicAuthAttribute, SubscriptionModel
from oms_webhooks.subscriptions.sealing import seal

#: Random bytes in a generated secret (192 bits), base64 after ``whsec_``.
GENERATED_SECRET_BYTES = 24


def check_schedule(
    config: dict[str, Any] | None, max_retries: int | None
) -> tuple[dict[str, Any], int]:
    """Validate a schedule against the delivery retention (raises CountdownConfigError, a 400)."""
    return validate_schedule(
        config, max_retries, retention_seconds=get_settings().delivery_retention_seconds
    )


def seal_secret(secret: SecretStr | None) -> str | None:
    """The sealed ``secret_key`` to store (None: no secret)."""
    return seal(secret.get_secret_value()) if secret is not None else None


def generate_secret() -> str:
    """A new ``whsec_`` secret: :data:`GENERATED_SECRET_BYTES` random bytes, base64."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(GENERATED_SECRET_BYTES)).decode()


def keep_redacted(new: dict[str, str] | None, old: dict[str, str] | None) -> dict[str, str] | None:
    """Headers sent back with the :data:`REDACTED` marker keep their stored value.

    Raises:
        ValidationFailed: a header is :data:`REDACTED` but has no stored value.
    """
    if new is None:
        return None
    stored = {k.lower(): v for k, v in (old or {}).items()}
    kept = {}
    for name, value in new.items():
        if value == REDACTED:
            if name.lower() not in stored:
                raise ValidationFailed(
                    f"{name} is {REDACTED} but has no stored value to keep",
                    {"additional_headers": [f"{name}: give the header's real value"]},
                )
            value = stored[name.lower()]
        kept[name] = value
    return kept


def refuse_redacted(item: SubscriptionModel) -> None:
    """A new subscription has no stored header value for :data:`REDACTED` to keep.

    Raises:
        ValidationFailed: a header value is :data:`REDACTED`.
    """
    if any(v == REDACTED for v in (item.additional_headers or {}).values()):
        raise ValidationFailed(
            f"a header value cannot be {REDACTED}",
            {"additional_headers": [f"{REDACTED} only keeps a stored value in an update"]},
        )


def check_authorization_header(item: SubscriptionModel) -> None:
    """Basic auth and an ``Authorization`` header exclude each other.

    Raises:
        ValidationFailed: both are set.
    """
    headers = item.additional_headers or {}
    if item.auth is not None and any(k.lower() == "authorization" for k in headers):
        raise ValidationFailed(
            "Authorization is set by config.auth (basic auth); remove one of them",
            {"additional_headers": ["Authorization cannot be set while config.auth is configured"]},
        )


def apply_auth(item: SubscriptionModel, raw: dict[str, Any] | None, given: set[str]) -> None:
    """Apply ``config`` from a request: the password keeps its value when omitted."""
    auth = (raw or {}).get("auth")
    if auth is None:
        item.auth = None
        return
    old_password = item.auth.sealed_password if item.auth is not None else None
    if "password" in given:
        password = auth.get("password")
        if isinstance(password, SecretStr):
            password = password.get_secret_value()
        sealed = seal(password) if password is not None else None
    else:
        sealed = old_password
    item.auth = BasicAuthAttribute(  # type: ignore[no-untyped-call]
        auth_type="basic", username=auth["username"], sealed_password=sealed
    )


def auth_fields_given(body: SubscriptionIn) -> set[str]:
    """The ``config.auth`` fields the request names (an omitted password is kept)."""
    if body.config is None or body.config.auth is None:
        return set()
    return set(body.config.auth.model_fields_set)


def check_scope(event_type: str, allowed: frozenset[str] | None) -> None:
    """``allowed`` (a token's scope, None = any) must include ``event_type``.

    Raises:
        Forbidden: it does not.
    """
    if allowed is not None and event_type not in allowed:
        raise Forbidden(
            f"this token may not subscribe to {event_type}",
            {
                "event_type": [
                    f"{event_type} is outside this token's scope: {', '.join(sorted(allowed))}"
                ]
            },
        )
