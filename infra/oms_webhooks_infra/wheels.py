"""The asset's third-party code: which wheels, pip's command, pruning, the offline wheelhouse.

:func:`runtime_requirements` reads ``[project] dependencies`` minus what the
Lambda runtime provides (:data:`constants.RUNTIME_PROVIDED`); :func:`pip_command`
installs them as binary wheels for the runtime's Python and platform (no
Docker); :func:`prune_runtime_provided` removes what pip brought of the
runtime's own distributions (botocore's dependencies) file by file from their
``RECORD``. ``make wheelhouse`` (``python -m oms_webhooks_infra.asset
wheelhouse``) runs :func:`download_wheelhouse` once, so that tests and
benchmarks build real assets offline (:func:`offline_pip_options`).
"""

from __future__ import annotations

import os
import platform
import re
import shutil
import sys
import tomllib
from collections.abc import Sequence
from pathlib import Path

from oms_webhooks_infra import constants as c
from oms_webhooks_infra.build_steps import REPO_ROOT, run_step

#: Where ``make wheelhouse`` puts the wheels that tests and benchmarks install offline.
DEFAULT_WHEELHOUSE = REPO_ROOT / ".venv" / "wheelhouse"
WHEELHOUSE_ENV = "OMS_WEBHOOKS_WHEELHOUSE"


# -- requirements -----------------------------------------------------------------


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


def host_platform() -> str | None:
    """The ``pip --platform`` tag of this machine (``manylinux2014_x86_64``); None off Linux."""
    if sys.platform != "linux":
        return None
    machine = {"arm64": "aarch64", "amd64": "x86_64"}.get(platform.machine().lower())
    return f"manylinux2014_{machine or platform.machine().lower()}"


def pip_command(
    output_dir: str,
    requirements: Sequence[str],
    *,
    platform_tag: str = c.PIP_PLATFORM,
    pip_options: Sequence[str] = (),
) -> list[str]:
    """The ``pip install`` that puts Lambda-ready wheels in ``output_dir``.

    Args:
        output_dir: the asset directory (``--target``).
        requirements: requirement strings.
        platform_tag: wheel platform; Lambda's arm64 by default, the host's to
            import the asset on this machine (tests, ``bench/cold_import.py``).
        pip_options: more options, e.g. ``--no-index --find-links DIR`` (offline).
    """
    return [
        sys.executable,
        "-m",
        "pip",
        "install",
        "--quiet",
        "--disable-pip-version-check",
        "--no-compile",
        "--platform",
        platform_tag,
        "--implementation",
        "cp",
        "--python-version",
        c.PYTHON_VERSION,
        "--only-binary=:all:",
        *pip_options,
        "--target",
        output_dir,
        *requirements,
    ]


# -- pruning what the runtime provides -----------------------------------------------


def _remove_distribution(output_dir: Path, dist_info: Path) -> None:
    """Delete every file a distribution installed (its ``RECORD``), then its empty folders."""
    record = dist_info / "RECORD"
    folders: set[Path] = set()
    if record.is_file():
        for line in record.read_text(encoding="utf-8").splitlines():
            relative = line.rsplit(",", 2)[0] if line.count(",") >= 2 else line
            if not relative:
                continue
            path = (output_dir / relative).resolve()
            if output_dir.resolve() not in path.parents:
                continue  # a script installed outside --target (../../bin)
            if path.is_file() or path.is_symlink():
                path.unlink()
            folders |= set(path.parents)
    shutil.rmtree(dist_info, ignore_errors=True)
    for folder in sorted(folders, key=lambda p: -len(p.parts)):
        if output_dir.resolve() in folder.parents and folder.is_dir():
            for cache in folder.glob("__pycache__"):
                shutil.rmtree(cache)
            if not any(folder.iterdir()):
                folder.rmdir()


def prune_runtime_provided(output_dir: Path) -> list[str]:
    """Remove distributions of :data:`constants.RUNTIME_PROVIDED` and pip's ``bin/``.

    Returns:
        The normalized names of the distributions removed.
    """
    provided = {_normalize(n) for n in c.RUNTIME_PROVIDED}
    removed: list[str] = []
    for dist_info in sorted(output_dir.glob("*.dist-info")):
        name = _normalize(dist_info.name.removesuffix(".dist-info").rsplit("-", 1)[0])
        if name in provided:
            _remove_distribution(output_dir, dist_info)
            removed.append(name)
    shutil.rmtree(output_dir / "bin", ignore_errors=True)
    return removed


# -- the offline wheelhouse (tests, benchmarks) -------------------------------------


def wheelhouse_dir() -> Path:
    """``$OMS_WEBHOOKS_WHEELHOUSE`` or ``.venv/wheelhouse``."""
    return Path(os.environ.get(WHEELHOUSE_ENV) or DEFAULT_WHEELHOUSE)


def offline_pip_options(wheelhouse: Path) -> list[str]:
    """pip options that install from ``wheelhouse`` only (no index, no network)."""
    return ["--no-index", "--find-links", str(wheelhouse)]


def download_wheelhouse(directory: Path) -> None:
    """Download the asset's wheels (Lambda's and this machine's platform) and boto3's.

    ``make wheelhouse`` runs it at install time (PyPI), so that tests and
    benchmarks build real assets offline (``pip --no-index --find-links``):
    they connect to nothing but 127.0.0.1. boto3 is there to stand in for the
    runtime's own copy when a handler is imported outside Lambda.
    """
    directory.mkdir(parents=True, exist_ok=True)
    platforms = dict.fromkeys([c.PIP_PLATFORM, host_platform() or c.PIP_PLATFORM])
    for platform_tag in platforms:
        command = pip_command(str(directory), [*runtime_requirements(), "boto3"])
        command[command.index("install")] = "download"
        command[command.index("--platform") + 1] = platform_tag
        target = command.index("--target")
        command[target : target + 2] = ["--dest", str(directory)]
        command.remove("--no-compile")
        run_step(command, f"pip download ({platform_tag})")
