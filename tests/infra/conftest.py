"""Synthesize the stack once per session (plain source asset, offline, no AWS).

Every infra test reads the same cloud assembly: the CloudFormation template
(``aws_cdk.assertions.Template``), cdk-nag's validation report and the JSON
file that cfn-lint checks.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator, MutableMapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

INFRA_DIR = Path(__file__).resolve().parents[2] / "infra"
if str(INFRA_DIR) not in sys.path:
    sys.path.insert(0, str(INFRA_DIR))


def node_major_version() -> str | None:
    """The major version of the ``node`` on PATH (``"20"``), or None without one."""
    node = shutil.which("node")
    if node is None:
        return None
    try:
        version = subprocess.run(
            [node, "--version"], capture_output=True, text=True, timeout=30, check=False
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    found = re.match(r"v?(\d+)\.", version.strip())
    return found.group(1) if found else None


def silence_jsii_node_warnings(environ: MutableMapping[str, str]) -> None:
    """Turn off jsii's banners about the Node version (the suite's output stays readable).

    jsii's runtime prints a large banner on stderr when Node is deprecated,
    untested or past its end of life; the last is silenced only by listing the
    major version in ``JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION``. Values
    already set are kept. Must run before ``aws_cdk`` is imported (it starts
    the jsii runtime).
    """
    environ.setdefault("JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION", "1")
    environ.setdefault("JSII_SILENCE_WARNING_UNTESTED_NODE_VERSION", "1")
    major = node_major_version()
    name = "JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION"
    listed = [v.strip() for v in environ.get(name, "").split(",") if v.strip()]
    if major is not None and major not in listed:
        environ[name] = ",".join([*listed, major])


silence_jsii_node_warnings(os.environ)

from aws_cdk.assertions import Template  # noqa: E402

from oms_webhooks_infra.app import build_app  # noqa: E402

STACK_NAME = "OmsWebhooksTest"
#: The slow lane's maximum concurrency in the synthesized stack: not the default (10),
#: so that the tests see the context value reach the template.
SLOW_LANE_MAX_CONCURRENCY = 7


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
    context = {
        "skipBundling": "true",
        "stackName": STACK_NAME,
        "dispatcherSlowMaxConcurrency": str(SLOW_LANE_MAX_CONCURRENCY),
    }
    app, stack = build_app(context, outdir=str(outdir))
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
