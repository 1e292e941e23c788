"""Synthesize the stack once per session (plain source asset, offline, no AWS).

Every infra test reads the same cloud assembly: the CloudFormation template
(``aws_cdk.assertions.Template``), cdk-nag's validation report and the JSON
file that cfn-lint checks.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

INFRA_DIR = Path(__file__).resolve().parents[2] / "infra"
if str(INFRA_DIR) not in sys.path:
    sys.path.insert(0, str(INFRA_DIR))

from aws_cdk.assertions import Template  # noqa: E402

from oms_webhooks_infra.app import build_app  # noqa: E402

STACK_NAME = "OmsWebhooksTest"


@dataclass(frozen=True)
class Synthesized:
    """One synthesis: where it went, the template, nag's report and any synth error."""

    outdir: Path
    template_path: Path
    template_json: dict[str, Any]
    validation_report: dict[str, Any]
    synth_error: str | None

    @property
    def template(self) -> Template:
        """The template for ``aws_cdk.assertions``."""
        return Template.from_json(self.template_json)

    def resources(self, type_name: str) -> dict[str, dict[str, Any]]:
        """Every resource of CloudFormation type ``type_name`` by logical id."""
        return {k: v for k, v in self.template_json["Resources"].items() if v["Type"] == type_name}


@pytest.fixture(scope="session")
def synthesized(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Synthesized]:
    """The stack synthesized once, with ``skipBundling`` (no pip, no network)."""
    outdir = tmp_path_factory.mktemp("cdk.out")
    app, stack = build_app({"skipBundling": "true", "stackName": STACK_NAME}, outdir=str(outdir))
    error = None
    try:
        app.synth()
    except RuntimeError as exc:  # cdk-nag's ValidationFailed, reported by test_nag
        error = str(exc)
    template_path = outdir / f"{stack.artifact_id}.template.json"
    report_path = outdir / "validation-report.json"
    report = json.loads(report_path.read_text()) if report_path.exists() else {}
    yield Synthesized(
        outdir=outdir,
        template_path=template_path,
        template_json=json.loads(template_path.read_text()),
        validation_report=report,
        synth_error=error,
    )
