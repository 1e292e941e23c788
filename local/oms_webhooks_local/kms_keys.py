"""The local state's KMS keys: the key that seals partner secrets, kept across restarts.

KMS keys live in moto, and a restored ciphertext is useless without its key
(moto's ciphertext names its key id; the key material decrypts it).
``kms.json`` (mode 0600) keeps the id, material, description and aliases of
every symmetric key; :func:`restore_keys` re-creates them with the same id and
material before provisioning, which then finds the alias and creates no new key.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

from oms_webhooks_local.journal import FORMAT_VERSION, write_atomically


def save_keys(kms: Any, path: Path) -> int:
    """Write every enabled symmetric key of moto's KMS backend ``kms`` to ``path`` (mode 0600).

    Returns:
        how many keys were written.
    """
    keys = [
        {
            "id": key.id,
            "material": base64.b64encode(key.key_material).decode("ascii"),
            "description": key.description,
            "aliases": sorted(key.aliases),
        }
        for key in list(kms.keys.values())
        if key.key_spec == "SYMMETRIC_DEFAULT" and key.key_state == "Enabled"
    ]
    data = json.dumps({"v": FORMAT_VERSION, "keys": keys}).encode("utf-8")
    write_atomically(path, data, mode=0o600)
    return len(keys)


def restore_keys(kms: Any, path: Path, account_id: str, region: str) -> int:
    """Re-create the keys saved at ``path`` in ``kms`` (same id, material, aliases).

    Keys already present are left alone; the ARN names ``account_id`` and ``region``.

    Returns:
        how many keys were re-created.
    """
    try:
        saved = json.loads(path.read_text("utf-8"))
    except FileNotFoundError:
        return 0
    restored = 0
    for entry in saved.get("keys", []):
        if entry["id"] in kms.keys:
            continue
        key = kms.create_key(
            policy=None,
            key_usage="ENCRYPT_DECRYPT",
            key_spec="SYMMETRIC_DEFAULT",
            description=entry.get("description", ""),
            tags=None,
        )
        del kms.keys[key.id]
        key.id = entry["id"]
        key.arn = f"arn:aws:kms:{region}:{account_id}:key/{key.id}"
        key.key_material = base64.b64decode(entry["material"])
        kms.keys[key.id] = key
        for alias in entry.get("aliases", []):
            if not kms.alias_exists(alias):
                kms.create_alias(key.id, alias)
        restored += 1
    return restored


__all__ = ["restore_keys", "save_keys"]
