"""The code asset: pip for Linux arm64 wheels, runtime-provided packages left out."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest

from oms_webhooks_infra import bundling
from oms_webhooks_infra import constants as c


def test_requirements_come_from_pyproject_without_boto3() -> None:
    requirements = bundling.runtime_requirements()
    names = {r.split(">")[0].split("<")[0].split("[")[0].split("=")[0] for r in requirements}
    assert "boto3" not in names
    assert {"pydantic", "pynamodb", "requests", "aws-lambda-powertools"} <= names


def test_pip_command_targets_lambda_arm64_wheels_only() -> None:
    command = bundling.pip_command("/out", ["pydantic>=2"])
    joined = " ".join(command)
    assert f"--platform {c.PIP_PLATFORM}" in joined
    assert c.PIP_PLATFORM == "manylinux2014_aarch64"
    assert "--only-binary=:all:" in command
    assert f"--python-version {c.PYTHON_VERSION}" in joined
    assert "--target /out" in joined
    assert command[-1] == "pydantic>=2"


def test_bundler_prunes_runtime_packages_and_copies_the_code(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a pip that "installs" pydantic and, transitively, botocore
    calls: list[list[str]] = []

    def fake_run(command: list[str], **_: Any) -> subprocess.CompletedProcess[str]:
        calls.append(command)
        target = Path(command[command.index("--target") + 1])
        for name in ("pydantic", "pydantic-2.9.0.dist-info", "botocore", "botocore-1.35.dist-info"):
            (target / name).mkdir()
        return subprocess.CompletedProcess(command, 0)

    monkeypatch.setattr(bundling.subprocess, "run", fake_run)
    # WHEN the local bundler runs
    assert bundling.PipBundler(["pydantic"]).try_bundle(str(tmp_path)) is True
    # THEN botocore is gone, the package is there, without caches
    assert len(calls) == 1
    present = {p.name for p in tmp_path.iterdir()}
    assert present == {"pydantic", "pydantic-2.9.0.dist-info", "oms_webhooks"}
    assert (tmp_path / "oms_webhooks" / "handlers" / "router.py").is_file()
    assert not list(tmp_path.rglob("__pycache__"))


def test_asset_hash_changes_with_requirements() -> None:
    assert bundling.source_fingerprint(["a"]) != bundling.source_fingerprint(["b"])
    assert bundling.source_fingerprint(["a"]) == bundling.source_fingerprint(["a"])
