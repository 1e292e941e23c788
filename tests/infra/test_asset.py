"""The code asset as built for real: bytecode the runtime uses, only Lambda code, imports.

The asset is built once per test run by :func:`oms_webhooks_infra.asset.build`
(the CDK bundler's own code) for *this machine's* architecture, so that the
runtime's Python version can import it here: pip installs offline from the
wheelhouse ``make wheelhouse`` downloaded at install time (``--no-index``;
tests connect to nothing but loopback), and the interpreter of the runtime's
version compiles it. Without either the tests skip, saying which is missing.
"""

from __future__ import annotations

import fcntl
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from oms_webhooks_infra import asset, asset_import, runtime_python, wheels
from oms_webhooks_infra import constants as c

#: The package's own modules the asset must not hold (developer tools).
DEV_ONLY_PATHS = ("local", "cli.py", "receiver.py", "publisher.py")
#: What the Lambda runtime provides and the asset leaves out.
RUNTIME_PACKAGES = ("boto3", "botocore", "s3transfer", "dateutil", "six.py")
#: What a deployed function has in its environment at import time.
LAMBDA_ENV = {
    "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
    "LANG": "C.UTF-8",
    "POWERTOOLS_SERVICE_NAME": c.SERVICE_NAME,
    "POWERTOOLS_METRICS_NAMESPACE": c.DEFAULT_METRICS_NAMESPACE,
    "POWERTOOLS_LOG_LEVEL": "INFO",
    "AWS_REGION": "us-east-1",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
}
MAX_ASSET_BYTES = 25 * 1024 * 1024


@dataclass(frozen=True)
class Built:
    """An asset built for this machine and the runtime's packages beside it."""

    asset_dir: Path
    runtime_dir: Path
    python: runtime_python.RuntimePython


def _prerequisites() -> tuple[runtime_python.RuntimePython, Path, str]:
    python = runtime_python.find_runtime_python()
    if python is None:
        pytest.skip(f"no Python {c.PYTHON_VERSION} on this machine (the asset would ship source)")
    wheelhouse = wheels.wheelhouse_dir()
    if not any(wheelhouse.glob("*.whl")):
        pytest.skip(f"no wheelhouse at {wheelhouse}: run `make wheelhouse` (needs PyPI once)")
    platform_tag = wheels.host_platform()
    if platform_tag is None:
        pytest.skip("the asset's wheels are Linux wheels; this machine is not Linux")
    return python, wheelhouse, platform_tag


@pytest.fixture(scope="session")
def built(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Built]:
    """The asset and the runtime stand-in, built once for all xdist workers of the run."""
    python, wheelhouse, platform_tag = _prerequisites()
    base = tmp_path_factory.getbasetemp()
    # Under xdist each worker has its own base folder in the run's one.
    shared = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base
    result = Built(shared / "asset", shared / "lambda-runtime", python)
    with (shared / "asset.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (shared / "asset.done").exists():
            for directory in (result.asset_dir, result.runtime_dir):
                shutil.rmtree(directory, ignore_errors=True)
                directory.mkdir()
            options = wheels.offline_pip_options(wheelhouse)
            asset.build(
                result.asset_dir, python=python, platform_tag=platform_tag, pip_options=options
            )
            asset_import.install_runtime_standin(
                result.runtime_dir, python, platform_tag=platform_tag, pip_options=options
            )
            (shared / "asset.done").touch()
    yield result


def test_every_pyc_has_the_runtimes_magic_number_and_is_unchecked_hash(built: Built) -> None:
    pycs = sorted(built.asset_dir.rglob("*.pyc"))
    assert len(pycs) > 100
    runtime_magic = runtime_python.pyc_magic(c.PYC_MAGIC_NUMBER)
    assert built.python.magic == runtime_magic
    wrong = []
    for pyc in pycs:
        header = pyc.read_bytes()[:16]
        flags = int.from_bytes(header[4:8], "little")
        if header[:4] != runtime_magic or flags != runtime_python.PYC_FLAGS_UNCHECKED_HASH:
            wrong.append((str(pyc.relative_to(built.asset_dir)), header[:8].hex()))
    assert wrong == []


def test_every_module_has_its_bytecode_where_the_runtime_looks(built: Built) -> None:
    sources = sorted(built.asset_dir.rglob("*.py"))
    assert len(sources) > 100
    missing = [
        str(source.relative_to(built.asset_dir))
        for source in sources
        if not runtime_python.pyc_path(
            source, f"cpython-{c.PYTHON_VERSION.replace('.', '')}"
        ).is_file()
    ]
    assert missing == []


def test_asset_holds_neither_developer_tools_nor_what_the_runtime_provides(built: Built) -> None:
    package = built.asset_dir / asset.PACKAGE_NAME
    assert (package / "handlers" / "dispatcher.py").is_file()
    assert [name for name in DEV_ONLY_PATHS if (package / name).exists()] == []
    assert [name for name in RUNTIME_PACKAGES if (built.asset_dir / name).exists()] == []
    assert not (built.asset_dir / "bin").exists()
    # ... but what requests and Powertools need themselves stays.
    assert (built.asset_dir / "urllib3").is_dir()
    assert (built.asset_dir / "jmespath").is_dir()


def test_asset_fits_in_25_mb_unzipped(built: Built) -> None:
    size = sum(p.stat().st_size for p in built.asset_dir.rglob("*") if p.is_file())
    assert size <= MAX_ASSET_BYTES, f"{size / 1e6:.1f} MB"


@pytest.mark.parametrize("handler", sorted(c.HANDLERS.values()))
def test_each_handler_imports_from_the_asset_alone_without_compiling(
    built: Built, handler: str
) -> None:
    # GIVEN the asset, and boto3 where the Lambda runtime has it
    module = handler.rpartition(".")[0]
    # WHEN the runtime's Python imports the handler in isolated mode (-I), writing nothing (-B)
    result = asset_import.import_in_new_interpreter(
        built.python, built.asset_dir, built.runtime_dir, module, env=LAMBDA_ENV
    )
    # THEN it came from the asset and nothing of the asset was compiled from source
    assert Path(result.file).is_relative_to(built.asset_dir), result.file
    assert [p for p in result.compiled if Path(p).is_relative_to(built.asset_dir)] == []


def test_bundler_without_runtime_python_ships_source_and_prunes_runtime_packages(
    tmp_path: Path,
) -> None:
    # GIVEN pynamodb, which pulls in botocore, python-dateutil and six
    _, wheelhouse, platform_tag = _prerequisites()
    # WHEN the asset is built with no interpreter of the runtime's version
    asset.build(
        tmp_path,
        requirements=["pynamodb"],
        python=None,
        platform_tag=platform_tag,
        pip_options=wheels.offline_pip_options(wheelhouse),
    )
    # THEN there is no bytecode, the runtime's packages are gone, pynamodb stays
    assert list(tmp_path.rglob("*.pyc")) == []
    assert (tmp_path / "pynamodb" / "models.py").is_file()
    assert [name for name in RUNTIME_PACKAGES if (tmp_path / name).exists()] == []
    assert not list(tmp_path.glob("botocore*")) and not list(tmp_path.glob("six*"))
    assert (tmp_path / asset.PACKAGE_NAME / "handlers" / "router.py").is_file()
    assert not (tmp_path / asset.PACKAGE_NAME / "local").exists()
