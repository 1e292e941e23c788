"""The Lambda code asset, built without Docker.

:class:`PipBundler` is a CDK local bundler (``ILocalBundling``): it installs
the runtime dependencies of ``pyproject.toml`` as Linux arm64 wheels with the
local ``pip`` (``--platform manylinux2014_aarch64 --only-binary=:all:``),
leaves out what the Lambda runtime already provides (boto3, botocore,
s3transfer) and copies the ``oms_webhooks`` package next to them. It needs
PyPI (or a pip index/cache) but no Docker, AWS account or credentials.

With ``skipBundling`` the asset is the plain ``functions/`` folder (no
dependencies): enough to synthesize the template in unit tests, offline.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import jsii
from aws_cdk import AssetHashType, BundlingOptions, DockerImage, ILocalBundling
from aws_cdk import aws_lambda as lambda_

from oms_webhooks_infra import constants as c

#: Repository root (``infra/oms_webhooks_infra/bundling.py`` → ``../..``).
REPO_ROOT = Path(__file__).resolve().parents[2]
FUNCTIONS_DIR = REPO_ROOT / "functions"
PACKAGE_NAME = "oms_webhooks"
_SKIP = ("__pycache__", "*.pyc", ".mypy_cache", "*.egg-info")


def _normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _requirement_name(requirement: str) -> str:
    match = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", requirement)
    if match is None:
        raise ValueError(f"not a requirement: {requirement!r}")
    return _normalize(match.group(1))


def runtime_requirements(pyproject: Path = REPO_ROOT / "pyproject.toml") -> list[str]:
    """``[project] dependencies`` of ``pyproject``, minus what the runtime provides."""
    data = tomllib.loads(pyproject.read_text(encoding="utf-8"))
    provided = {_normalize(n) for n in c.RUNTIME_PROVIDED}
    return [r for r in data["project"]["dependencies"] if _requirement_name(r) not in provided]


def pip_command(output_dir: str, requirements: list[str]) -> list[str]:
    """The ``pip install`` that puts Lambda-ready (Linux arm64) wheels in ``output_dir``."""
    return [
        sys.executable,
        "-m",
        "pip",
        "install",
        "--quiet",
        "--disable-pip-version-check",
        "--no-compile",
        "--platform",
        c.PIP_PLATFORM,
        "--implementation",
        "cp",
        "--python-version",
        c.PYTHON_VERSION,
        "--only-binary=:all:",
        "--target",
        output_dir,
        *requirements,
    ]


def _prune_runtime_provided(output_dir: Path) -> None:
    """Remove boto3/botocore/s3transfer pulled in transitively (e.g. by pynamodb)."""
    provided = {_normalize(n) for n in c.RUNTIME_PROVIDED}
    for entry in output_dir.iterdir():
        stem = entry.name.split("-")[0] if entry.name.endswith(".dist-info") else entry.name
        if _normalize(stem) in provided and entry.is_dir():
            shutil.rmtree(entry)


def source_fingerprint(requirements: list[str]) -> str:
    """Hash of the package's files, the requirements and the target platform."""
    digest = hashlib.sha256()
    for part in (c.PYTHON_VERSION, c.PIP_PLATFORM, *requirements):
        digest.update(part.encode() + b"\0")
    package = FUNCTIONS_DIR / PACKAGE_NAME
    for path in sorted(package.rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc":
            digest.update(str(path.relative_to(package)).encode() + b"\0")
            digest.update(path.read_bytes())
    return digest.hexdigest()


@jsii.implements(ILocalBundling)
class PipBundler:
    """Local bundling: pip-installed arm64 wheels plus the ``oms_webhooks`` package."""

    def __init__(self, requirements: list[str]) -> None:
        self.requirements = requirements

    def try_bundle(self, output_dir: str, *_args: Any, **_kwargs: Any) -> bool:
        """Fill ``output_dir`` with the asset; raises if pip fails (never falls back to Docker)."""
        subprocess.run(pip_command(output_dir, self.requirements), check=True)  # noqa: S603
        out = Path(output_dir)
        _prune_runtime_provided(out)
        shutil.copytree(
            FUNCTIONS_DIR / PACKAGE_NAME,
            out / PACKAGE_NAME,
            ignore=shutil.ignore_patterns(*_SKIP),
            dirs_exist_ok=True,
        )
        return True


def code_asset(*, skip_bundling: bool) -> lambda_.Code:
    """The code of every function (one asset, four handlers).

    Args:
        skip_bundling: use the plain ``functions/`` folder, without dependencies
            (fast, offline; for tests, never for a deployment).
    """
    if skip_bundling:
        return lambda_.Code.from_asset(str(FUNCTIONS_DIR), exclude=list(_SKIP))
    requirements = runtime_requirements()
    return lambda_.Code.from_asset(
        str(FUNCTIONS_DIR),
        asset_hash_type=AssetHashType.CUSTOM,
        asset_hash=source_fingerprint(requirements),
        bundling=BundlingOptions(
            # Never pulled: the local bundler always succeeds or raises.
            image=DockerImage.from_registry("public.ecr.aws/sam/build-python3.13"),
            local=PipBundler(requirements),
        ),
    )
