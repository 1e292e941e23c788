"""Seal and unseal partner secrets (``secret_key``, basic-auth passwords).

Every secret the service stores passes through :func:`seal` on the way in and
:func:`unseal` on the way out, so that how secrets are protected at rest can
change in this one module (DESIGN §3). A sealed value is a string
``<scheme>:<data>``; unsealing dispatches on the scheme, so values sealed by
an older scheme stay readable after a change.

Current scheme ``v0``: the secret as is, protected by the DynamoDB table's
encryption at rest. The security issue decides on stronger sealing (a
customer-managed KMS key or envelope encryption) and adds it here.
"""

from __future__ import annotations

_SCHEME = "v0"


class SealError(ValueError):
    """A sealed value is malformed or of an unknown scheme."""


def seal(secret: str) -> str:
    """Return the stored form of ``secret`` (a non-empty string)."""
    return f"{_SCHEME}:{secret}"


def unseal(sealed: str) -> str:
    """Return the secret from its stored form.

    Raises:
        SealError: unknown scheme or malformed value (the message never
            contains the value).
    """
    scheme, sep, data = sealed.partition(":")
    if not sep or scheme != _SCHEME:
        raise SealError("sealed secret of unknown scheme")
    return data
