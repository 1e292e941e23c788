"""The ``oms-webhooks`` command line: the local stack, admin tasks, publishing, a receiver.

One module per command group: :mod:`.local` (the local stack),
:mod:`.tokens`, :mod:`.events` (publish, replay, DLQ redrive) and
:mod:`.receiver`; :mod:`.base` holds the group and what they share.
A thin layer over :mod:`oms_webhooks_local.stack`, :mod:`oms_webhooks.api.tokens`,
:mod:`oms_webhooks_local.publisher` and :mod:`oms_webhooks_local.receiver`.
Every subcommand that talks to AWS takes ``--endpoint-url`` (else
``$AWS_ENDPOINT_URL``, else the local stack's ``http://127.0.0.1:4566``) and
``--aws`` (real AWS: no endpoint override, the default credential chain).
Against an endpoint it signs as moto's default account (``testing``/``testing``,
``us-east-1``), DESIGN §6.

Exit codes: 0 done, 1 AWS or the endpoint failed, 2 bad usage or input.
"""

from __future__ import annotations

from oms_webhooks_local.cli import events, local, receiver, tokens
from oms_webhooks_local.cli.base import main

__all__ = ["events", "local", "main", "receiver", "tokens"]
