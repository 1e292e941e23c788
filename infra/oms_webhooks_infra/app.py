"""Build the CDK app: the stack plus cdk-nag's AWS Solutions checks."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from aws_cdk import App, Validations
from cdk_nag import AwsSolutionsChecks

from oms_webhooks_infra import constants as c
from oms_webhooks_infra.stack import OmsWebhooksStack

CDK_JSON = Path(__file__).resolve().parents[2] / "cdk.json"


def cdk_json_context(path: Path = CDK_JSON) -> dict[str, Any]:
    """The ``context`` of ``cdk.json`` (feature flags, defaults); {} without the file."""
    if not path.is_file():
        return {}
    return dict(json.loads(path.read_text(encoding="utf-8")).get("context", {}))


def build_app(
    context: dict[str, Any] | None = None, outdir: str | None = None
) -> tuple[App, OmsWebhooksStack]:
    """Create the app and its one stack, with cdk-nag's AwsSolutionsChecks registered.

    Args:
        context: context values over ``cdk.json``'s (the CLI's ``-c`` wins over both).
        outdir: cloud assembly directory (default: ``$CDK_OUTDIR`` or ``cdk.out``).

    Returns:
        The app (call ``app.synth()``) and the stack.
    """
    merged = {**cdk_json_context(), **(context or {})}
    if outdir is None and "CDK_OUTDIR" not in os.environ:
        outdir = "cdk.out"
    app = App(context=merged, outdir=outdir)
    stack_name = str(app.node.try_get_context(c.CTX_STACK_NAME) or c.STACK_NAME)
    stack = OmsWebhooksStack(
        app,
        stack_name,
        description=f"{c.SERVICE_NAME}: webhook delivery for OMS events",
    )
    Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    return app, stack
