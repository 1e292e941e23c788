"""cdk-nag's AWS Solutions checks and cfn-lint pass on the synthesized template."""

from __future__ import annotations

from cfnlint.api import ManualArgs, lint_file

from tests.infra.conftest import Synthesized

#: CDK adds a DependsOn on each function's role that a GetAtt already implies.
_CFN_LINT_IGNORED = ["W3005"]


def test_cdk_nag_reports_no_unacknowledged_finding(synthesized: Synthesized) -> None:
    violations = [
        f"{v['severity']} {v['ruleName']} at "
        + ", ".join(x["constructPath"] for x in v["violatingConstructs"])
        for report in synthesized.validation_report.get("pluginReports", [])
        for v in report.get("violations", [])
    ]
    assert synthesized.synth_error is None, synthesized.synth_error
    assert violations == []


def test_cdk_nag_ran_on_the_app(synthesized: Synthesized) -> None:
    # The report exists only when a validation plugin is registered.
    assert synthesized.validation_report.get("title") == "Validation Report"


def test_cfn_lint_finds_nothing(synthesized: Synthesized) -> None:
    matches = lint_file(
        synthesized.template_path,
        config=ManualArgs(regions=["us-east-1", "eu-west-1"], ignore_checks=_CFN_LINT_IGNORED),
    )
    assert [str(m) for m in matches] == []
