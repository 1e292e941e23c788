"""Benchmark 4, cold import: each handler imported as Lambda would, from the code asset.

"Lambda-like": the runtime's Python version (3.13, found as synth finds it)
imports each of the four handler modules in a new interpreter with
``python -I -B`` (isolated; writing no bytecode, as on Lambda's read-only
``/var/task``), from a copy of the code asset built for *this machine's*
architecture (the deployment's arm64 wheels do not load here), with boto3 and
its dependencies after it on ``sys.path`` where the runtime provides them
(compiled, as the runtime ships them). The figure is the import's wall time,
interpreter start excluded, median of ``--n`` (default 7) runs per handler.

Two variants of the same asset in the same run, runs interleaved:

* ``source`` (the baseline): the asset without its ``__pycache__``, as it
  was built before issue 16 (``pip --no-compile``): every cold start compiles
  the package and its dependencies from source;
* ``bytecode``: the asset as built now, with unchecked-hash ``.pyc`` (PEP 552)
  compiled by the runtime's version.

Cross-checks that fail loudly: each import reports the files it compiled
from source (``SourceFileLoader.source_to_code`` counted in the child); the
``bytecode`` variant must compile nothing of the asset and the ``source``
variant must compile it, and neither may write into the asset (its files are
counted before and after).

Also the deployment asset (arm64, as ``cdk synth`` builds it): bytes
unzipped and zipped, files, with and without bytecode. The wheels come from
the wheelhouse ``make wheelhouse`` downloaded (``pip --no-index``): the
benchmark connects to nothing. Goals (issue 16): ≤ 300 ms for authorizer,
router and dispatcher, ≤ 350 ms for api; asset ≤ 25 MB unzipped.
``--no-asset`` skips every build (the smoke test): only the boto3 figure
stays null too, with the reason.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import _common as c

sys.path.insert(0, str(c.REPO_ROOT / "infra"))
from oms_webhooks_infra import asset  # (after infra/ is on the path)
from oms_webhooks_infra import constants as infra_constants

NAME = "cold_import"
HANDLERS = ("api", "authorizer", "dispatcher", "router")
GOAL_MS = {"api": 350, "authorizer": 300, "dispatcher": 300, "router": 300}
GOAL_ASSET_BYTES = 25 * 1024 * 1024
#: What a deployed function has in its environment (what import-time code may read).
LAMBDA_ENV = {
    "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
    "LANG": "C.UTF-8",
    "POWERTOOLS_SERVICE_NAME": "oms-webhooks",
    "POWERTOOLS_METRICS_NAMESPACE": "OmsWebhooks",
    "POWERTOOLS_LOG_LEVEL": "INFO",
    "AWS_REGION": "us-east-1",
    "AWS_DEFAULT_REGION": "us-east-1",
}


class CrossCheckFailed(SystemExit):
    """The measurement did not measure what it claims."""


def _extra(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--no-asset", action="store_true", help="build nothing (smoke test)")


def _dir_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def _file_count(path: Path) -> int:
    return sum(1 for p in path.rglob("*") if p.is_file())


def _sizes(directory: Path, scratch: Path) -> dict[str, int]:
    archive = shutil.make_archive(str(scratch / directory.name), "zip", directory)
    with zipfile.ZipFile(archive) as zf:
        entries = len(zf.namelist())
    size = Path(archive).stat().st_size
    Path(archive).unlink()
    return {"bytes": _dir_bytes(directory), "zip_bytes": size, "files": entries}


def _deployment_asset(python: asset.RuntimePython, wheelhouse: Path, tmp: Path) -> dict[str, Any]:
    """The arm64 asset as synth builds it: sizes with bytecode and without."""
    out = tmp / "deployment"
    out.mkdir()
    asset.build(out, python=python, pip_options=asset.offline_pip_options(wheelhouse))
    with_bytecode = _sizes(out, tmp)
    largest = sorted(
        ((p.name, _dir_bytes(p)) for p in out.iterdir() if p.is_dir()), key=lambda i: -i[1]
    )[:8]
    for cache in list(out.rglob("__pycache__")):
        shutil.rmtree(cache)
    return {
        "asset": with_bytecode,
        "asset_source_only": _sizes(out, tmp),
        "asset_largest_dirs": dict(largest),
    }


def _read_only_copy(source: Path, target: Path, *, bytecode: bool) -> Path:
    ignore = None if bytecode else shutil.ignore_patterns("__pycache__")
    shutil.copytree(source, target, ignore=ignore)
    _writable(target, False)
    return target


def _writable(directory: Path, writable: bool) -> None:
    for path in [directory, *directory.rglob("*")]:
        mode = path.stat().st_mode
        path.chmod(mode | 0o200 if writable else mode & ~0o222)


def _measure(
    python: asset.RuntimePython, variants: dict[str, Path], runtime_dir: Path, runs: int
) -> dict[str, dict[str, list[float]]]:
    """Milliseconds per variant and handler; runs interleaved so load drift hits both alike."""
    times: dict[str, dict[str, list[float]]] = {v: {h: [] for h in HANDLERS} for v in variants}
    files_before = {v: _file_count(d) for v, d in variants.items()}
    for _ in range(runs):
        for handler in HANDLERS:
            for variant, directory in variants.items():
                result = asset.import_in_new_interpreter(
                    python,
                    directory,
                    runtime_dir,
                    f"oms_webhooks.handlers.{handler}",
                    env=LAMBDA_ENV,
                )
                compiled = [p for p in result.compiled if Path(p).is_relative_to(directory)]
                if not Path(result.file).is_relative_to(directory):
                    raise CrossCheckFailed(f"{handler} came from {result.file}, not the asset")
                if variant == "bytecode" and compiled:
                    raise CrossCheckFailed(
                        f"{handler}: compiled {len(compiled)} files, e.g. {compiled[0]}"
                    )
                if variant == "source" and not compiled:
                    raise CrossCheckFailed(f"{handler}: the source-only asset compiled nothing")
                times[variant][handler].append(result.seconds * 1000)
    for variant, directory in variants.items():
        if _file_count(directory) != files_before[variant]:
            raise CrossCheckFailed(f"the {variant} asset was written to during the imports")
    return times


def _boto3_ms(python: asset.RuntimePython, runtime_dir: Path, empty: Path, runs: int) -> float:
    samples = [
        asset.import_in_new_interpreter(python, empty, runtime_dir, "boto3", env=LAMBDA_ENV).seconds
        for _ in range(runs)
    ]
    return round(statistics.median(samples) * 1000, 1)


def _null(reason: str) -> dict[str, Any]:
    return {"import_ms": None, "import_ms_source": None, "reason": reason}


def _run(args: argparse.Namespace) -> tuple[dict[str, Any], Any, float | None]:
    python = asset.find_runtime_python()
    if python is None:
        return _null(f"no Python {infra_constants.PYTHON_VERSION} on this machine"), None, None
    if args.no_asset:
        return _null("skipped (--no-asset)"), None, None
    wheelhouse = asset.wheelhouse_dir()
    platform_tag = asset.host_platform()
    if platform_tag is None or not any(wheelhouse.glob("*.whl")):
        return _null(f"no wheelhouse at {wheelhouse} (make wheelhouse) or not Linux"), None, None
    with tempfile.TemporaryDirectory(prefix="bench-cold-") as scratch:
        tmp = Path(scratch)
        options = asset.offline_pip_options(wheelhouse)
        c.note("building the asset for this machine and the runtime's boto3")
        built = tmp / "built"
        built.mkdir()
        asset.build(built, python=python, platform_tag=platform_tag, pip_options=options)
        runtime_dir = tmp / "runtime"
        runtime_dir.mkdir()
        asset.install_runtime_standin(
            runtime_dir, python, platform_tag=platform_tag, pip_options=options
        )
        variants = {
            "source": _read_only_copy(built, tmp / "source", bytecode=False),
            "bytecode": _read_only_copy(built, tmp / "bytecode", bytecode=True),
        }
        (tmp / "empty").mkdir()
        load_before = os.getloadavg()
        c.note(f"importing each handler {args.n} times per variant")
        try:
            boto3_ms = _boto3_ms(python, runtime_dir, tmp / "empty", args.n)
            times = _measure(python, variants, runtime_dir, args.n)
        finally:
            for directory in variants.values():  # writable again, for the clean-up
                _writable(directory, True)
        load_after = os.getloadavg()
        c.note("building the deployment (arm64) asset")
        deployment = _deployment_asset(python, wheelhouse, tmp)
    medians = {
        v: {h: round(statistics.median(ms), 1) for h, ms in per.items()} for v, per in times.items()
    }
    new, old = medians["bytecode"], medians["source"]
    figures = {
        "import_ms": new,
        "import_ms_source": old,
        "import_ms_spread": {
            v: {h: [round(min(ms), 1), round(max(ms), 1)] for h, ms in per.items()}
            for v, per in times.items()
        },
        "ratio_per_handler": {h: c.ratio(new[h], old[h]) for h in HANDLERS},
        "runtime_python": {"executable": python.executable, "cache_tag": python.cache_tag},
        "load_avg_1_5_15": {
            "before": [round(x, 2) for x in load_before],
            "after": [round(x, 2) for x in load_after],
        },
        **deployment,
        "goal": "import <= 300 ms (api <= 350 ms) per handler, Lambda-like; asset <= 25 MB",
        "goal_met": {
            "import": all(new[h] <= GOAL_MS[h] for h in HANDLERS),
            "asset": deployment["asset"]["bytes"] <= GOAL_ASSET_BYTES,
        },
        "reason": None,
    }
    baseline = {"import_ms_source": old, "import_boto3_ms": boto3_ms}
    return figures, baseline, c.ratio(max(new.values()), max(old.values()))


def main() -> None:
    """Run the benchmark and print its JSON line."""
    args = c.parse_args(__doc__ or NAME, default_n=7, extra=_extra)
    figures, baseline, ratio = _run(args)
    c.emit(NAME, n=args.n, baseline=baseline, ratio=ratio, **figures)


if __name__ == "__main__":
    main()
