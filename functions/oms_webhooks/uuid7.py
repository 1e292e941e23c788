"""Time-ordered UUIDs (RFC 9562 version 7) for subscription ids.

Python gains ``uuid.uuid7`` in 3.14; until then this 10-line version. Ids
sort by creation time (millisecond precision, random within a millisecond),
so a tenant's subscriptions list in creation order from DynamoDB's range key.
"""

from __future__ import annotations

import os
import time
import uuid


def uuid7() -> uuid.UUID:
    """A new version-7 UUID: 48-bit Unix time in ms, then 74 random bits."""
    ms = time.time_ns() // 1_000_000
    rand = int.from_bytes(os.urandom(10), "big")
    value = (ms & (2**48 - 1)) << 80 | rand & (2**80 - 1)
    value = (value & ~(0xF << 76)) | (0x7 << 76)  # version 7
    value = (value & ~(0x3 << 62)) | (0x2 << 62)  # RFC 4122 variant
    return uuid.UUID(int=value)
