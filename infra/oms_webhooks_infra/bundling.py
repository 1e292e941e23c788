"""The Lambda code asset for the CDK, built without Docker.

:class:`PipBundler` is a CDK local bundler (``ILocalBundling``) around
:func:`oms_webhooks_infra.asset.build`: pip-installed Linux arm64 wheels for
the runtime's Python, without what the runtime provides, the ``oms_webhooks``
package without its developer tools, and unchecked-hash bytecode compiled by
an interpreter of the runtime's version. It needs PyPI (or a pip index/cache)
but no Docker, AWS account or credentials. Without a Python of the runtime's
version the asset ships source only and synth says so (a warning).

With ``skipBundling`` the asset is the plain ``functions/`` folder (no
dependencies, no bytecode, no developer tools): enough to synthesize the
template in unit tests, offline.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Final

import jsii
from aws_cdk import Annotations, AssetHashType, BundlingOptions, DockerImage, ILocalBundling
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from oms_webhooks_infra import asset, runtime_python, wheels
from oms_webhooks_infra import constants as c

#: The id of synth's warning when no interpreter of the runtime's version is found.
NO_BYTECODE_WARNING_ID: Final = "oms-webhooks:assetWithoutBytecode"


def no_bytecode_warning() -> str:
    """What synth says when the asset ships source only."""
    version, env = c.PYTHON_VERSION, runtime_python.RUNTIME_PYTHON_ENV
    return (
        f"No Python {version} found (${env}, python{version} on PATH, "
        f"pyenv): the code asset ships source only, and every cold start compiles "
        f"the package and its dependencies (hundreds of ms). Install Python {c.PYTHON_VERSION} "
        f"or point ${env} at it, then synthesize again."
    )


@jsii.implements(ILocalBundling)
class PipBundler:
    """Local bundling: :func:`oms_webhooks_infra.asset.build` into the CDK's output folder."""

    def __init__(
        self,
        requirements: list[str],
        python: runtime_python.RuntimePython | None,
        *,
        platform_tag: str = c.PIP_PLATFORM,
        pip_options: tuple[str, ...] = (),
    ) -> None:
        self.requirements = requirements
        self.python = python
        self.platform_tag = platform_tag
        self.pip_options = pip_options

    def try_bundle(self, output_dir: str, *_args: Any, **_kwargs: Any) -> bool:
        """Fill ``output_dir`` with the asset; raises if pip fails (never falls back to Docker)."""
        asset.build(
            Path(output_dir),
            requirements=self.requirements,
            python=self.python,
            platform_tag=self.platform_tag,
            pip_options=self.pip_options,
        )
        return True


def code_asset(scope: Construct, *, skip_bundling: bool) -> lambda_.Code:
    """The code of every function (one asset, four handlers).

    Args:
        scope: where synth's warning goes when the asset ships source only.
        skip_bundling: use the plain ``functions/`` folder, without dependencies
            (fast, offline; for tests, never for a deployment).
    """
    if skip_bundling:
        dev_only = [f"{asset.PACKAGE_NAME}/{name}" for name in sorted(asset.DEV_ONLY)]
        return lambda_.Code.from_asset(str(asset.FUNCTIONS_DIR), exclude=[*asset.SKIP, *dev_only])
    return bundled_code(scope, runtime_python.find_runtime_python())


def bundled_code(scope: Construct, python: runtime_python.RuntimePython | None) -> lambda_.Code:
    """The bundled asset, with bytecode compiled by ``python`` (None: source only, and a warning).

    Bundling itself runs when a function first uses the code (at synth).
    """
    if python is None:
        Annotations.of(scope).add_warning_v2(NO_BYTECODE_WARNING_ID, no_bytecode_warning())
    requirements = wheels.runtime_requirements()
    return lambda_.Code.from_asset(
        str(asset.FUNCTIONS_DIR),
        asset_hash_type=AssetHashType.CUSTOM,
        asset_hash=asset.fingerprint(requirements, python),
        bundling=BundlingOptions(
            # Never pulled: the local bundler always succeeds or raises.
            image=DockerImage.from_registry(f"public.ecr.aws/sam/build-python{c.PYTHON_VERSION}"),
            local=PipBundler(requirements, python),
        ),
    )
