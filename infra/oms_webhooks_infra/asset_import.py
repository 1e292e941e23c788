"""Importing a module from a built asset as the Lambda runtime would (tests, benchmarks).

:func:`install_runtime_standin` puts boto3 where the runtime's own copy would
be; :func:`import_in_new_interpreter` imports one module in a new interpreter
of the runtime's version from the asset and that stand-in alone, and says how
long it took and what had to be compiled from source on the way
(``tests/infra/test_asset.py``, ``bench/cold_import.py``).
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from oms_webhooks_infra.build_steps import AssetBuildError, run_step
from oms_webhooks_infra.runtime_python import RuntimePython, compile_bytecode
from oms_webhooks_infra.wheels import pip_command


def install_runtime_standin(
    directory: Path,
    python: RuntimePython,
    *,
    platform_tag: str,
    pip_options: Sequence[str] = (),
) -> None:
    """What the Lambda runtime adds to ``sys.path`` after the asset: boto3 and its dependencies.

    Installed by pip for ``platform_tag`` and compiled by ``python``, as the
    runtime ships them (with their bytecode).
    """
    command = pip_command(str(directory), ["boto3"], platform_tag=platform_tag)
    command[command.index("--target") : command.index("--target")] = list(pip_options)
    run_step(command, "pip install boto3")
    shutil.rmtree(directory / "bin", ignore_errors=True)
    compile_bytecode(directory, python)


#: Probe lines (after ``import importlib.machinery``) that list in ``compiled`` every
#: file the interpreter compiles from source, i.e. whose bytecode it could not use.
COUNT_COMPILED = """
compiled = []
_to_code = importlib.machinery.SourceFileLoader.source_to_code
def _counting(self, data, path, *args, **kwargs):
    compiled.append(path)
    return _to_code(self, data, path, *args, **kwargs)
importlib.machinery.SourceFileLoader.source_to_code = _counting
"""
#: Run by the runtime-version interpreter: import one module from the asset (then the
#: runtime stand-in), as Lambda's ``sys.path`` has them, and say how long it took and
#: which files had to be compiled from source on the way.
IMPORT_PROBE = (
    """
import importlib, importlib.machinery, json, sys, time
asset, runtime, module = sys.argv[1:4]
"""
    + COUNT_COMPILED
    + """
sys.path[:0] = [asset, runtime]
started = time.perf_counter()
imported = importlib.import_module(module)
seconds = time.perf_counter() - started
print(json.dumps({"seconds": seconds, "file": imported.__file__, "compiled": compiled}))
"""
)


@dataclass(frozen=True)
class ImportResult:
    """One import of a module in a new interpreter.

    Attributes:
        seconds: the import's wall time (``time.perf_counter``), interpreter start excluded.
        file: the module's ``__file__``.
        compiled: the source files compiled during the import (none when the
            bytecode was used).
    """

    seconds: float
    file: str
    compiled: list[str]


def import_in_new_interpreter(
    python: RuntimePython,
    asset_dir: Path,
    runtime_dir: Path,
    module: str,
    *,
    env: Mapping[str, str],
    timeout: float = 120,
) -> ImportResult:
    """Import ``module`` with ``python -I -B`` from ``asset_dir`` and ``runtime_dir`` alone.

    ``-I`` keeps out the environment's ``PYTHON*`` variables, the user's
    site-packages and the current directory; ``-B`` writes no bytecode, as on
    Lambda's read-only ``/var/task``.

    Raises:
        AssetBuildError: the import failed (the message has the traceback's tail).
    """
    done = subprocess.run(  # noqa: S603 (the runtime-version interpreter and our probe)
        [
            python.executable,
            "-I",
            "-B",
            "-c",
            IMPORT_PROBE,
            str(asset_dir),
            str(runtime_dir),
            module,
        ],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        env=dict(env),
    )
    if done.returncode != 0:
        tail = "\n".join(done.stderr.strip().splitlines()[-15:])
        raise AssetBuildError(f"importing {module} failed (exit {done.returncode}):\n{tail}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    return ImportResult(float(result["seconds"]), str(result["file"]), list(result["compiled"]))
