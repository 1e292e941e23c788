"""An interpreter of the Lambda runtime's Python version, and the bytecode it compiles.

The asset ships unchecked-hash ``.pyc`` (PEP 552) in
``__pycache__/<name>.cpython-313.pyc``, where the runtime's import system looks:
Lambda's ``/var/task`` is read-only, so without them every cold start
compiles the package and its dependencies from source, and the asset's file
dates are reset when it is zipped, so timestamp-checked ``.pyc`` would be
stale. Only an interpreter of the runtime's version writes bytecode the
runtime reads: :func:`find_runtime_python` looks for one,
:func:`compile_bytecode` uses it.
"""

from __future__ import annotations

import functools
import glob
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from oms_webhooks_infra import constants as c
from oms_webhooks_infra.build_steps import run_step

#: Where Lambda unpacks the asset: the file name recorded in each ``.pyc``
#: (tracebacks name ``/var/task/...`` rather than the build directory).
LAMBDA_TASK_ROOT = "/var/task"
#: Environment variable naming the runtime-version interpreter explicitly.
RUNTIME_PYTHON_ENV = "OMS_WEBHOOKS_RUNTIME_PYTHON"
#: PEP 552 flags word of an unchecked-hash ``.pyc``: hash-based (bit 0 set),
#: source not checked (bit 1 clear).
PYC_FLAGS_UNCHECKED_HASH = 0b01


# -- the interpreter of the runtime's version ----------------------------------------


@dataclass(frozen=True)
class RuntimePython:
    """An interpreter of the Lambda runtime's Python version.

    Attributes:
        executable: its path.
        version: ``"3.13"``.
        cache_tag: ``"cpython-313"`` (the ``.pyc`` file names: ``X.cpython-313.pyc``).
        magic: the first 4 bytes of its ``.pyc`` (``importlib.util.MAGIC_NUMBER``).
    """

    executable: str
    version: str
    cache_tag: str
    magic: bytes


_PROBE = (
    "import sys, importlib.util; print(sys.implementation.name, '%d.%d' % sys.version_info[:2], "
    "sys.implementation.cache_tag, importlib.util.MAGIC_NUMBER.hex())"
)


def probe_python(executable: str) -> RuntimePython | None:
    """What ``executable`` is (a CPython and its version), or None if it does not run.

    A pyenv shim of a version that is installed but not selected exits with an
    error: that is a None here, not an exception.
    """
    try:
        done = subprocess.run(  # noqa: S603 (a candidate interpreter, probed)
            [executable, "-I", "-c", _PROBE],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    parts = done.stdout.split()
    if done.returncode != 0 or len(parts) != 4 or parts[0] != "cpython":
        return None
    return RuntimePython(executable, parts[1], parts[2], bytes.fromhex(parts[3]))


def _candidates(version: str, environ: Mapping[str, str]) -> Iterator[str]:
    explicit = environ.get(RUNTIME_PYTHON_ENV)
    if explicit:
        yield explicit
    yield sys.executable
    on_path = shutil.which(f"python{version}", path=environ.get("PATH", ""))
    if on_path:
        yield on_path
    pyenv_root = Path(environ.get("PYENV_ROOT") or Path(environ.get("HOME", "~")) / ".pyenv")
    versions = pyenv_root.expanduser() / "versions"
    found = glob.glob(str(versions / f"{version}.*" / "bin" / f"python{version}"))
    # Newest patch release first (3.13.10 after 3.13.9).
    yield from sorted(found, key=lambda p: [int(x) for x in re.findall(r"\d+", p)], reverse=True)
    for prefix in ("/usr/local/bin", "/usr/bin", "/opt/homebrew/bin"):
        yield f"{prefix}/python{version}"


def find_runtime_python(
    version: str = c.PYTHON_VERSION,
    environ: Mapping[str, str] | None = None,
) -> RuntimePython | None:
    """An interpreter of the runtime's Python ``version``, or None if there is none.

    Looks at, in order: ``$OMS_WEBHOOKS_RUNTIME_PYTHON``, the running
    interpreter, ``python3.13`` on ``PATH``, pyenv's versions
    (``$PYENV_ROOT`` or ``~/.pyenv``, newest patch first), then ``/usr/local/bin``,
    ``/usr/bin``. Each candidate is run once and must say it is CPython
    ``version`` with the magic number of :data:`constants.PYC_MAGIC_NUMBER`.

    Args:
        version: ``"3.13"``.
        environ: the environment to search (default ``os.environ``).
    """
    env = os.environ if environ is None else environ
    if environ is None and version == c.PYTHON_VERSION:
        return _find_default()
    return _find(version, env)


@functools.cache
def _find_default() -> RuntimePython | None:
    return _find(c.PYTHON_VERSION, os.environ)


def _find(version: str, environ: Mapping[str, str]) -> RuntimePython | None:
    seen: set[str] = set()
    for candidate in _candidates(version, environ):
        if candidate in seen or not os.access(candidate, os.X_OK):
            continue
        seen.add(candidate)
        found = probe_python(candidate)
        if found is not None and found.version == version and _magic_fits(found, version):
            return found
    return None


def _magic_fits(found: RuntimePython, version: str) -> bool:
    if version != c.PYTHON_VERSION:
        return True
    return found.magic == pyc_magic(c.PYC_MAGIC_NUMBER)


def pyc_magic(number: int) -> bytes:
    """The 4 bytes that open a ``.pyc`` of magic ``number`` (``3571`` → ``b'\\xf3\\r\\r\\n'``)."""
    return number.to_bytes(2, "little") + b"\r\n"


# -- bytecode -------------------------------------------------------------------------


def compile_bytecode(directory: Path, python: RuntimePython) -> None:
    """Compile every ``.py`` under ``directory`` to unchecked-hash ``.pyc`` with ``python``.

    ``PYTHONHASHSEED=0`` and a clean environment (no ``PYTHONPYCACHEPREFIX``
    sending the files elsewhere) keep the output where the runtime looks and
    the same from one build to the next.

    Raises:
        AssetBuildError: a module does not compile (it would not import either).
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    env["PYTHONHASHSEED"] = "0"
    command = [
        python.executable,
        "-s",
        "-m",
        "compileall",
        "-q",
        "-j",
        "0",
        "--invalidation-mode",
        "unchecked-hash",
        "-s",
        str(directory),
        "-p",
        LAMBDA_TASK_ROOT,
        str(directory),
    ]
    run_step(command, f"compiling the asset with {python.executable}", env=env)


def pyc_path(source: Path, cache_tag: str) -> Path:
    """Where the import system looks for ``source``'s bytecode (``__pycache__/X.<tag>.pyc``)."""
    return source.parent / "__pycache__" / f"{source.stem}.{cache_tag}.pyc"
