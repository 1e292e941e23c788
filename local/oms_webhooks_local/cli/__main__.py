"""``python -m oms_webhooks_local.cli``: the ``oms-webhooks`` command."""

from oms_webhooks_local.cli import main

main()
