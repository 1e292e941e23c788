"""Build the Lambda code asset: what the four functions import, with their bytecode.

Plain Python (no CDK): ``bundling`` wraps :func:`build` as the CDK local
bundler, and ``bench/cold_import.py`` and the infra tests call it directly;
``python -m oms_webhooks_infra.asset wheelhouse`` is ``make wheelhouse``
(:func:`main`). This module holds the build and what it ships of our own
package; the wheels are :mod:`~oms_webhooks_infra.wheels`' (steps 1-2), the
bytecode :mod:`~oms_webhooks_infra.runtime_python`'s (step 4). Steps, in ``build``:

1. ``pip install --target OUT --platform manylinux2014_<arch> --python-version
   3.13 --only-binary=:all: --no-compile`` of ``[project] dependencies``
   (binary wheels for the runtime's Python and architecture; no Docker;
   :func:`~oms_webhooks_infra.wheels.pip_command`);
2. remove the distributions the Lambda runtime provides itself (boto3,
   botocore, s3transfer and botocore's own dependencies), file by file from
   their ``RECORD``, and pip's ``bin/`` scripts
   (:func:`~oms_webhooks_infra.wheels.prune_runtime_provided`);
3. copy the ``oms_webhooks`` package *without* its developer tools
   (:data:`DEV_ONLY`: the local stack, the CLI, the sample receiver, the
   publisher's command side). Since issue 18 those live in their own package
   (``local/oms_webhooks_local``), so the list is a second guard. It is a list of
   what to leave out, not of what to ship, so a new module the functions import ships without a
   change here;
4. compile every module to bytecode with an interpreter of the runtime's
   version (:func:`~oms_webhooks_infra.runtime_python.find_runtime_python`),
   as unchecked-hash ``.pyc`` (PEP 552)
   in ``__pycache__/<name>.cpython-313.pyc``, where the runtime's import
   system looks. Lambda's ``/var/task`` is read-only, so without them every
   cold start compiles the package and its dependencies from source; the
   asset's file dates are reset when it is zipped, so timestamp-checked
   ``.pyc`` would be stale and compiled again anyway. Unchecked-hash ``.pyc``
   are used as they are: the asset is immutable once built. Without such an
   interpreter the asset ships source only (``bundling`` warns at synth).
"""

from __future__ import annotations

import ast
import hashlib
import shutil
import sys
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

from oms_webhooks_infra import constants as c
from oms_webhooks_infra.build_steps import REPO_ROOT, run_step
from oms_webhooks_infra.runtime_python import RuntimePython, compile_bytecode
from oms_webhooks_infra.wheels import (
    download_wheelhouse,
    pip_command,
    prune_runtime_provided,
    runtime_requirements,
    wheelhouse_dir,
)

FUNCTIONS_DIR = REPO_ROOT / "functions"
PACKAGE_NAME = "oms_webhooks"
PACKAGE_DIR = FUNCTIONS_DIR / PACKAGE_NAME
#: Top-level entries that once served developers (now ``local/oms_webhooks_local``),
#: kept as a guard so they never come back into the asset:
#: the local stack, the CLI, the sample receiver, the publisher's command side
#: (the PutEvents core the functions use is ``event_bus.py``, which ships).
DEV_ONLY: frozenset[str] = frozenset({"local", "cli.py", "receiver.py", "publisher.py"})
#: Never copied from the source tree, at any depth.
SKIP = ("__pycache__", "*.pyc", ".mypy_cache", "*.egg-info")


# -- the package without its developer tools -----------------------------------------


def _ignore_in_package(package_dir: Path) -> Callable[[str, list[str]], set[str]]:
    skip = shutil.ignore_patterns(*SKIP)

    def ignore(directory: str, names: list[str]) -> set[str]:
        ignored = set(skip(directory, names))
        if Path(directory) == package_dir:
            ignored |= DEV_ONLY & set(names)
        return ignored

    return ignore


def shipped_package_files(package_dir: Path = PACKAGE_DIR) -> list[Path]:
    """Every file of the package that goes into the asset, sorted (relative paths)."""
    files: list[Path] = []
    for path in sorted(package_dir.rglob("*")):
        relative = path.relative_to(package_dir)
        if not path.is_file() or relative.parts[0] in DEV_ONLY:
            continue
        if "__pycache__" in relative.parts or path.suffix == ".pyc":
            continue
        if any(part.endswith((".egg-info", ".mypy_cache")) for part in relative.parts):
            continue
        files.append(relative)
    return files


def copy_package(output_dir: Path, package_dir: Path = PACKAGE_DIR) -> None:
    """Copy the package into ``output_dir`` without :data:`DEV_ONLY` and caches."""
    shutil.copytree(
        package_dir,
        output_dir / package_dir.name,
        ignore=_ignore_in_package(package_dir),
        dirs_exist_ok=True,
    )


def module_name(relative: Path, package: str = PACKAGE_NAME) -> str:
    """A package file's dotted name: ``handlers/router.py`` → ``oms_webhooks.handlers.router``."""
    parts = list(relative.with_suffix("").parts)
    return ".".join([package, *(parts[:-1] if parts[-1] == "__init__" else parts)])


def package_imports(files: Iterable[Path], package_dir: Path = PACKAGE_DIR) -> dict[str, set[str]]:
    """What of the package each given module imports, anywhere in its body.

    Function-level (lazy) imports count: one of them reaching a module that is
    not shipped fails only when that code runs, on Lambda. ``from a.b import c``
    yields ``a.b`` and ``a.b.c`` (``c`` may be a module or an attribute).

    Returns:
        ``{"oms_webhooks.handlers.router": {"oms_webhooks.routing.fanout", ...}, ...}``.
    """
    name = package_dir.name
    found: dict[str, set[str]] = {}
    for relative in files:
        if relative.suffix != ".py":
            continue
        module = module_name(relative, name)
        package = module if relative.stem == "__init__" else module.rpartition(".")[0]
        tree = ast.parse((package_dir / relative).read_text(encoding="utf-8"))
        imports: set[str] = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                imports |= {a.name for a in node.names if a.name.split(".")[0] == name}
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = package.split(".")
                    anchor = anchor[: len(anchor) - node.level + 1]
                    base = ".".join([*anchor, base] if base else anchor)
                if base.split(".")[0] != name:
                    continue
                imports.add(base)
                imports |= {f"{base}.{a.name}" for a in node.names}
        found[module] = imports
    return found


def unshipped_imports(package_dir: Path = PACKAGE_DIR) -> set[tuple[str, str]]:
    """``(importer, imported)`` pairs where a shipped module imports one that does not ship."""
    every = [p.relative_to(package_dir) for p in sorted(package_dir.rglob("*.py"))]
    every = [p for p in every if "__pycache__" not in p.parts]
    shipped = [p for p in shipped_package_files(package_dir) if p.suffix == ".py"]
    left_out = {module_name(p, package_dir.name) for p in every} - {
        module_name(p, package_dir.name) for p in shipped
    }
    return {
        (importer, target)
        for importer, targets in package_imports(shipped, package_dir).items()
        for target in targets
        if any(target == out or target.startswith(out + ".") for out in left_out)
    }


# -- the whole build ------------------------------------------------------------------


def build(
    output_dir: Path,
    *,
    requirements: Sequence[str] | None = None,
    python: RuntimePython | None,
    platform_tag: str = c.PIP_PLATFORM,
    pip_options: Sequence[str] = (),
) -> None:
    """Fill ``output_dir`` with the code asset (see the module's docstring).

    Args:
        output_dir: an existing (empty) directory.
        requirements: default :func:`~oms_webhooks_infra.wheels.runtime_requirements`.
        python: the runtime-version interpreter compiling the bytecode; None
            ships source only.
        platform_tag: wheel platform (Lambda's arm64 by default).
        pip_options: more pip options (``--no-index --find-links DIR``).

    Raises:
        oms_webhooks_infra.build_steps.AssetBuildError: pip or the compiler failed.
    """
    reqs = list(runtime_requirements() if requirements is None else requirements)
    run_step(
        pip_command(str(output_dir), reqs, platform_tag=platform_tag, pip_options=pip_options),
        "pip install",
    )
    prune_runtime_provided(output_dir)
    copy_package(output_dir)
    if python is not None:
        compile_bytecode(output_dir, python)


def fingerprint(requirements: Sequence[str], python: RuntimePython | None) -> str:
    """Hash of what decides the asset: shipped files, requirements, platform, bytecode."""
    digest = hashlib.sha256()
    bytecode = "source-only" if python is None else f"{python.cache_tag}:{python.magic.hex()}"
    for part in (c.PYTHON_VERSION, c.PIP_PLATFORM, bytecode, *requirements):
        digest.update(part.encode() + b"\0")
    for relative in shipped_package_files():
        digest.update(str(relative).encode() + b"\0")
        digest.update((PACKAGE_DIR / relative).read_bytes())
    return digest.hexdigest()


def main(argv: Sequence[str] | None = None) -> None:
    """``python -m oms_webhooks_infra.asset wheelhouse [DIR]`` (``make wheelhouse``)."""
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] != "wheelhouse":
        raise SystemExit("usage: python -m oms_webhooks_infra.asset wheelhouse [DIR]")
    directory = Path(args[1]) if len(args) > 1 else wheelhouse_dir()
    download_wheelhouse(directory)
    print(f"wheelhouse: {directory}")


if __name__ == "__main__":
    main()
