"""Benchmark 4, cold import: each handler module's import time in a fresh interpreter.

For each of the four handler modules (``oms_webhooks.handlers.*``) and for
the baseline ``import boto3``, a new ``python`` process imports the module
and reports ``time.perf_counter()`` around the import; the figure is the
median of ``--n`` (default 5) processes. Two variants:

* ``cached``: with the bytecode caches (``__pycache__``) the venv already has;
* ``no_pyc``: compiled from source at every import (an empty
  ``PYTHONPYCACHEPREFIX`` and ``PYTHONDONTWRITEBYTECODE``). This is what
  Lambda does with our asset: it is built with ``pip --no-compile`` and
  ``/var/task`` is read-only, so no ``.pyc`` is ever written (boto3 comes
  from the runtime, so the baseline stays ``cached``).

Then the code asset is built as ``cdk synth`` builds it
(``infra/oms_webhooks_infra/bundling.py``: the bundler's own ``pip install
--platform manylinux2014_aarch64`` into a temporary directory, runtime-provided
packages pruned, the package copied) and measured: bytes unzipped and as a
zip. Needs PyPI; without it ``asset_bytes`` is null with the reason.
``import_ms_lambda_like`` is ``no_pyc`` minus boto3's own compile time
(``import boto3`` no_pyc minus cached), since the runtime's boto3 has its
bytecode.
``--no-asset`` skips it (the smoke test). Goals: ≤ 300 ms per handler
(``import_ms_lambda_like`` is the one that matters), asset ≤ 15 MB.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import _common as c

NAME = "cold_import"
HANDLERS = ("api", "authorizer", "dispatcher", "router")
GOAL_MS = 300
GOAL_ASSET_BYTES = 15 * 1024 * 1024
#: Settings a deployed function has in its environment (what import-time code may read).
LAMBDA_ENV = {
    "POWERTOOLS_SERVICE_NAME": "oms-webhooks",
    "POWERTOOLS_METRICS_NAMESPACE": "OmsWebhooks",
    "POWERTOOLS_LOG_LEVEL": "INFO",
    "AWS_REGION": "us-east-1",
    "AWS_DEFAULT_REGION": "us-east-1",
}
_PROBE = (
    "import time, importlib; t = time.perf_counter(); importlib.import_module({module!r}); "
    "print(time.perf_counter() - t)"
)
_BUILD = """
import sys
sys.path.insert(0, {infra!r})
from oms_webhooks_infra.bundling import PipBundler, runtime_requirements
PipBundler(runtime_requirements()).try_bundle({out!r})
"""


def _extra(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--no-asset", action="store_true", help="do not build the code asset")


def _import_seconds(module: str, *, no_pyc: bool) -> float:
    """Seconds to import ``module`` in a new interpreter."""
    env = {**os.environ, **LAMBDA_ENV}
    with tempfile.TemporaryDirectory(prefix="bench-pyc-") as prefix:
        if no_pyc:
            env["PYTHONPYCACHEPREFIX"] = prefix
            env["PYTHONDONTWRITEBYTECODE"] = "1"
        out = subprocess.run(
            [sys.executable, "-c", _PROBE.format(module=module)],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
    return float(out.stdout.strip().splitlines()[-1])


def _median_ms(module: str, runs: int, *, no_pyc: bool) -> float:
    return round(
        statistics.median(_import_seconds(module, no_pyc=no_pyc) for _ in range(runs)) * 1000, 1
    )


def _dir_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def _asset() -> dict[str, Any]:
    """Build the code asset into a temporary directory; its sizes, or null and why."""
    with tempfile.TemporaryDirectory(prefix="bench-asset-") as tmp:
        out = Path(tmp) / "asset"
        out.mkdir()
        script = _BUILD.format(infra=str(c.REPO_ROOT / "infra"), out=str(out))
        try:
            subprocess.run(
                [sys.executable, "-c", script],
                capture_output=True,
                text=True,
                timeout=100,
                check=True,
                cwd=c.REPO_ROOT,
            )
        except subprocess.CalledProcessError as exc:
            reason = (exc.stderr or exc.stdout or "").strip().splitlines()[-1:] or ["pip failed"]
            return {"asset_bytes": None, "asset_reason": f"bundling failed: {reason[0][:300]}"}
        except subprocess.TimeoutExpired:
            return {"asset_bytes": None, "asset_reason": "bundling took over 100 s (PyPI?)"}
        unzipped = _dir_bytes(out)
        archive = shutil.make_archive(str(Path(tmp) / "asset"), "zip", out)
        with zipfile.ZipFile(archive) as zf:
            entries = len(zf.namelist())
        largest = sorted(
            ((p.name, _dir_bytes(p)) for p in out.iterdir() if p.is_dir()),
            key=lambda item: -item[1],
        )[:10]
        return {
            "asset_bytes": unzipped,
            "asset_zip_bytes": Path(archive).stat().st_size,
            "asset_files": entries,
            "asset_largest_dirs": dict(largest),
            "asset_reason": None,
        }


def main() -> None:
    """Run the benchmark and print its JSON line."""
    args = c.parse_args(__doc__ or NAME, default_n=5, extra=_extra)
    baseline_ms = _median_ms("boto3", args.n, no_pyc=False)
    boto3_no_pyc_ms = _median_ms("boto3", args.n, no_pyc=True)
    # On Lambda boto3/botocore come from the runtime (with their bytecode): take
    # their own compile time out of the no_pyc figures for the Lambda-like estimate.
    boto3_compile_ms = max(0.0, boto3_no_pyc_ms - baseline_ms)
    cached = {h: _median_ms(f"oms_webhooks.handlers.{h}", args.n, no_pyc=False) for h in HANDLERS}
    no_pyc = {h: _median_ms(f"oms_webhooks.handlers.{h}", args.n, no_pyc=True) for h in HANDLERS}
    asset = (
        {"asset_bytes": None, "asset_reason": "skipped (--no-asset)"} if args.no_asset else _asset()
    )
    lambda_like = {h: round(ms - boto3_compile_ms, 1) for h, ms in no_pyc.items()}
    worst = max(lambda_like.values())
    c.emit(
        NAME,
        n=args.n,
        import_ms=cached,
        import_ms_no_pyc=no_pyc,
        import_ms_lambda_like=lambda_like,
        **asset,
        goal=f"<= {GOAL_MS} ms per handler, asset <= {GOAL_ASSET_BYTES} bytes",
        goal_met={
            "import_cached": max(cached.values()) <= GOAL_MS,
            "import_lambda_like": worst <= GOAL_MS,
            "asset": None
            if asset["asset_bytes"] is None
            else asset["asset_bytes"] <= GOAL_ASSET_BYTES,
        },
        baseline={"import_boto3_ms": baseline_ms, "import_boto3_ms_no_pyc": boto3_no_pyc_ms},
        ratio=c.ratio(max(cached.values()), baseline_ms),
        ratio_lambda_like=c.ratio(worst, baseline_ms),
    )


if __name__ == "__main__":
    main()
