"""Build the Lambda code asset: what the four functions import, with their bytecode.

Plain Python (no CDK): ``bundling`` wraps :func:`build` as the CDK local
bundler, and ``bench/cold_import.py``, the infra tests and ``make wheelhouse``
call it directly. Steps, in ``build``:

1. ``pip install --target OUT --platform manylinux2014_<arch> --python-version
   3.13 --only-binary=:all: --no-compile`` of ``[project] dependencies``
   (binary wheels for the runtime's Python and architecture; no Docker);
2. remove the distributions the Lambda runtime provides itself (boto3,
   botocore, s3transfer and botocore's own dependencies), file by file from
   their ``RECORD``, and pip's ``bin/`` scripts;
3. copy the ``oms_webhooks`` package *without* its developer tools
   (:data:`DEV_ONLY`: the local stack, the CLI, the sample receiver, the
   publisher's command side). Since issue 18 those live in their own package
   (``local/oms_webhooks_local``), so the list is a second guard. It is a list of
   what to leave out, not of what to ship, so a new module the functions import ships without a
   change here;
4. compile every module to bytecode with an interpreter of the runtime's
   version (:func:`find_runtime_python`), as unchecked-hash ``.pyc`` (PEP 552)
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
import functools
import glob
import hashlib
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from oms_webhooks_infra import constants as c

#: Repository root (``infra/oms_webhooks_infra/asset.py`` → ``../..``).
REPO_ROOT = Path(__file__).resolve().parents[2]
FUNCTIONS_DIR = REPO_ROOT / "functions"
PACKAGE_NAME = "oms_webhooks"
PACKAGE_DIR = FUNCTIONS_DIR / PACKAGE_NAME
#: Where Lambda unpacks the asset: the file name recorded in each ``.pyc``
#: (tracebacks name ``/var/task/...`` rather than the build directory).
LAMBDA_TASK_ROOT = "/var/task"
#: Top-level entries that once served developers (now ``local/oms_webhooks_local``),
#: kept as a guard so they never come back into the asset:
#: the local stack, the CLI, the sample receiver, the publisher's command side
#: (the PutEvents core the functions use is ``event_bus.py``, which ships).
DEV_ONLY: frozenset[str] = frozenset({"local", "cli.py", "receiver.py", "publisher.py"})
#: Never copied from the source tree, at any depth.
SKIP = ("__pycache__", "*.pyc", ".mypy_cache", "*.egg-info")
#: Environment variable naming the runtime-version interpreter explicitly.
RUNTIME_PYTHON_ENV = "OMS_WEBHOOKS_RUNTIME_PYTHON"
#: PEP 552 flags word of an unchecked-hash ``.pyc``: hash-based (bit 0 set),
#: source not checked (bit 1 clear).
PYC_FLAGS_UNCHECKED_HASH = 0b01
#: Where ``make wheelhouse`` puts the wheels that tests and benchmarks install offline.
DEFAULT_WHEELHOUSE = REPO_ROOT / ".venv" / "wheelhouse"
WHEELHOUSE_ENV = "OMS_WEBHOOKS_WHEELHOUSE"


class AssetBuildError(RuntimeError):
    """pip or the bytecode compiler failed; the message carries the tail of its output."""


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


def _run(command: list[str], what: str, env: Mapping[str, str] | None = None) -> None:
    done = subprocess.run(  # noqa: S603 (our own fixed commands)
        command, capture_output=True, text=True, check=False, env=env
    )
    if done.returncode != 0:
        tail = "\n".join((done.stderr or done.stdout).strip().splitlines()[-15:])
        raise AssetBuildError(f"{what} failed (exit {done.returncode}):\n{tail}")


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
    _run(command, f"compiling the asset with {python.executable}", env=env)


def pyc_path(source: Path, cache_tag: str) -> Path:
    """Where the import system looks for ``source``'s bytecode (``__pycache__/X.<tag>.pyc``)."""
    return source.parent / "__pycache__" / f"{source.stem}.{cache_tag}.pyc"


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
        requirements: default :func:`runtime_requirements`.
        python: the runtime-version interpreter compiling the bytecode; None
            ships source only.
        platform_tag: wheel platform (Lambda's arm64 by default).
        pip_options: more pip options (``--no-index --find-links DIR``).

    Raises:
        AssetBuildError: pip or the compiler failed.
    """
    reqs = list(runtime_requirements() if requirements is None else requirements)
    _run(
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


# -- importing a handler as the runtime would (tests, benchmarks) ---------------------


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
    _run(command, "pip install boto3")
    shutil.rmtree(directory / "bin", ignore_errors=True)
    compile_bytecode(directory, python)


#: Run by the runtime-version interpreter: import one module from the asset (then the
#: runtime stand-in), as Lambda's ``sys.path`` has them, and say how long it took and
#: which files had to be compiled from source on the way.
IMPORT_PROBE = """
import importlib, importlib.machinery, json, sys, time
asset, runtime, module = sys.argv[1:4]
compiled = []
_to_code = importlib.machinery.SourceFileLoader.source_to_code
def _counting(self, data, path, *args, **kwargs):
    compiled.append(path)
    return _to_code(self, data, path, *args, **kwargs)
importlib.machinery.SourceFileLoader.source_to_code = _counting
sys.path[:0] = [asset, runtime]
started = time.perf_counter()
imported = importlib.import_module(module)
seconds = time.perf_counter() - started
print(json.dumps({"seconds": seconds, "file": imported.__file__, "compiled": compiled}))
"""


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
        _run(command, f"pip download ({platform_tag})")


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
