"""Seal and unseal partner secrets (``secret_key``, basic-auth passwords).

Every secret the service stores passes through :func:`seal` on the way in and
:func:`unseal` on the way out, so how secrets are protected at rest changes
in this one module (DESIGN §3). A sealed value is ``<scheme>:<data>``;
unsealing dispatches on the scheme, so values sealed by an older scheme stay
readable after a change.

Schemes:

* ``kms1``: the secret encrypted with the KMS key
  ``OMS_WEBHOOKS_SECRETS_KMS_KEY_ID`` (AWS KMS ``Encrypt``, encryption
  context ``{"service": "oms-webhooks", "purpose": "partner-secret"}``),
  base64. Used whenever that setting is set: always in a deployment (the
  CDK stack creates the key) and on the local stack (moto's KMS).
* ``v0``: the secret as is, relying on the table's own encryption at rest;
  only when no key is configured (unit tests, or tables written before
  sealing was configured), still readable afterwards.

Why field-level KMS rather than only the table's customer-managed key: a
table key protects the disk, but anyone who may read the table reads the
secrets. With ``kms1``, reading a secret also needs ``kms:Decrypt`` on this
key, which only the dispatcher and the API (manual resend) hold; a table
export, a backup or an operator's console shows ciphertext. Decrypted values
are cached per process (bounded LRU) so a delivery costs no KMS call once warm.
Secrets never appear in an exception message from this module.
"""

from __future__ import annotations

import base64
import binascii
from functools import lru_cache

from oms_webhooks import names
from oms_webhooks.aws_clients import client
from oms_webhooks.settings import get_settings

PLAIN_SCHEME = "v0"
KMS_SCHEME = "kms1"
#: Bound to every ciphertext: a blob sealed for anything else does not unseal here.
ENCRYPTION_CONTEXT = {"service": names.SERVICE_NAME, "purpose": "partner-secret"}


class SealError(ValueError):
    """A sealed value is malformed, of an unknown scheme, or KMS refused it."""


def seal(secret: str) -> str:
    """Return the stored form of ``secret`` (KMS-encrypted when a key is configured)."""
    key_id = get_settings().secrets_kms_key_id
    if not key_id:
        return f"{PLAIN_SCHEME}:{secret}"
    blob = client("kms").encrypt(
        KeyId=key_id, Plaintext=secret.encode("utf-8"), EncryptionContext=ENCRYPTION_CONTEXT
    )["CiphertextBlob"]
    return f"{KMS_SCHEME}:{base64.b64encode(blob).decode('ascii')}"


def unseal(sealed: str) -> str:
    """Return the secret from its stored form.

    Raises:
        SealError: unknown scheme, malformed value, or KMS refused to decrypt
            (the message never contains the value).
    """
    scheme, sep, data = sealed.partition(":")
    if sep and scheme == PLAIN_SCHEME:
        return data
    if sep and scheme == KMS_SCHEME:
        return _decrypt(data)
    raise SealError("sealed secret of unknown scheme")


@lru_cache(maxsize=1024)
def _decrypt(data: str) -> str:
    try:
        blob = base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raise SealError("sealed secret is not base64") from None
    try:
        plain = client("kms").decrypt(CiphertextBlob=blob, EncryptionContext=ENCRYPTION_CONTEXT)
    except Exception as exc:  # botocore ClientError and friends: name the code only
        code = getattr(exc, "response", {}).get("Error", {}).get("Code", type(exc).__name__)
        raise SealError(f"KMS could not unseal the secret ({code})") from None
    return bytes(plain["Plaintext"]).decode("utf-8")
