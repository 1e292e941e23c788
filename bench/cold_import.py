"""Benchmark 4, cold start: each handler imported as Lambda would, then its first event.

"Lambda-like": the runtime's Python version (3.13, found as synth finds it)
imports each of the four handler modules in a new interpreter with
``python -I -B`` (isolated; writing no bytecode, as on Lambda's read-only
``/var/task``), from a read-only copy of the code asset built for *this
machine's* architecture (the deployment's arm64 wheels do not load here), with
boto3 and its dependencies after it on ``sys.path`` where the runtime provides
them (compiled, as the runtime ships them). The import figure is its wall
time, interpreter start excluded, median of ``--n`` (default 7) runs per
handler. Beside it, the child's CPU time (``time.process_time``): on a
shared machine the wall time also waits for other work, the CPU time much less
(it still grows with cache and core sharing), so before/after differences
show in it first.

Three variants of the asset in the same run, runs interleaved so that load
drift hits them alike:

* ``source``: the asset without its ``__pycache__``, as it was built before
  issue 16 (``pip --no-compile``): every cold start compiles the package and
  its dependencies from source (import only);
* ``before``: the asset with bytecode, its ``oms_webhooks`` package taken from
  git revision ``--before`` (default :data:`BEFORE_REV`, the package before
  the import-time cuts of issue 16: boto3 at import, Powertools' OpenAPI
  models in the api, the API's shapes in the dispatcher);
* ``bytecode``: the asset as built now (unchecked-hash ``.pyc``, PEP 552,
  compiled by the runtime's version).

Cold start = init + first event: for ``before`` and ``bytecode`` the same
child, once the handler is imported, handles one real first event against
moto's server on 127.0.0.1 (tables, queues and data set up by the benchmark;
the child's sockets may reach loopback only): the authorizer a valid token,
the api ``GET /whisperer/hooks/`` (the events come from the local API
gateway, so their shape is the one the stack sends), the router one OMS event
matching one subscription (a delivery created, its message sent), the
dispatcher one delivery message (read, signed, POSTed to a receiver on
127.0.0.1, recorded). So work moved out of the import shows up in the first
event instead of disappearing from the figures.

Cross-checks that fail loudly: each child reports the files it compiled from
source (``SourceFileLoader.source_to_code`` counted in the child): the
bytecode variants compile nothing of the asset, during the import *or* the
first event (lazy imports have their bytecode too), the ``source`` variant
compiles; no variant may write into its asset (files counted before and
after); every first event succeeded (the authorizer allowed, the api answered
200 with the tenant's subscriptions, no record failed) and the receiver got
exactly one POST per dispatcher run.

Also the deployment asset (arm64, as ``cdk synth`` builds it): bytes
unzipped and zipped, files, with and without bytecode, and the machine's
load average before and after the runs (the machine may be shared). The
wheels come from the wheelhouse ``make wheelhouse`` downloaded (``pip
--no-index``): the benchmark connects to nothing but 127.0.0.1. Goals
(issue 16): ≤ 300 ms for authorizer, router and dispatcher, ≤ 350 ms for
api; asset ≤ 25 MB unzipped. ``--no-asset`` skips every build (the smoke
test): the figures are null, with the reason.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import uuid
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from io import BytesIO
from pathlib import Path
from typing import Any

import _common as c

sys.path.insert(0, str(c.REPO_ROOT / "infra"))
from oms_webhooks_infra import (  # (after infra/ is on the path)
    asset,
    asset_import,
    runtime_python,
    wheels,
)
from oms_webhooks_infra import constants as infra_constants

NAME = "cold_import"
HANDLERS = ("api", "authorizer", "dispatcher", "router")
GOAL_MS = {"api": 350, "authorizer": 300, "dispatcher": 300, "router": 300}
GOAL_ASSET_BYTES = 25 * 1024 * 1024
#: The package before the import-time cuts of issue 16 (main at ac8e90e).
BEFORE_REV = "ac8e90e"
#: Event types of the router's and the dispatcher's first events.
ROUTER_TYPE = "package.status.packed"
DISPATCHER_TYPE = "package.status.shipped"
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

#: Run by the runtime-version interpreter: only loopback connections; import the
#: handler from the asset (then the runtime stand-in), then hand it one event (none
#: when the event file is "-"). Wall and CPU time of each.
FIRST_EVENT_PROBE = (
    """
import importlib, importlib.machinery, ipaddress, json, socket, sys, time, uuid
asset, runtime, module, event_file = sys.argv[1:5]
_connect = socket.socket.connect
def _loopback_only(sock, address):
    if sock.family in (socket.AF_INET, socket.AF_INET6):
        if not ipaddress.ip_address(str(address[0]).split("%", 1)[0]).is_loopback:
            raise OSError(f"the benchmark connects to loopback only, not {address[0]!r}")
    return _connect(sock, address)
socket.socket.connect = _loopback_only
"""
    + asset_import.COUNT_COMPILED
    + """
sys.path[:0] = [asset, runtime]
event = None
if event_file != "-":
    with open(event_file, encoding="utf-8") as f:
        event = json.load(f)
class Context:
    function_name = "oms-webhooks-bench"
    function_version = "$LATEST"
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:oms-webhooks-bench"
    memory_limit_in_mb = 1024
    aws_request_id = str(uuid.uuid4())
    log_group_name = "/aws/lambda/oms-webhooks-bench"
    log_stream_name = "bench"
    def get_remaining_time_in_millis(self):
        return 60000
started, started_cpu = time.perf_counter(), time.process_time()
imported = importlib.import_module(module)
imported_at, imported_cpu = time.perf_counter(), time.process_time()
import_compiled = list(compiled)
result = None
if event is not None:
    try:
        result = imported.handler(event, Context())
    except Exception as exc:
        result = {"raised": str(exc)}
done, done_cpu = time.perf_counter(), time.process_time()
print(json.dumps({
    "import": imported_at - started, "first_event": done - imported_at,
    "import_cpu": imported_cpu - started_cpu, "first_event_cpu": done_cpu - imported_cpu,
    "file": imported.__file__, "compiled_import": import_compiled,
    "compiled_event": compiled[len(import_compiled):], "result": result,
}, default=str))
"""
)


class CrossCheckFailed(SystemExit):
    """The measurement did not measure what it claims."""


def _extra(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--no-asset", action="store_true", help="build nothing (smoke test)")
    parser.add_argument(
        "--before", default=BEFORE_REV, help=f"git revision of the 'before' package ({BEFORE_REV})"
    )


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


def _deployment_asset(
    python: runtime_python.RuntimePython, wheelhouse: Path, tmp: Path
) -> dict[str, Any]:
    """The arm64 asset as synth builds it: sizes with bytecode and without."""
    out = tmp / "deployment"
    out.mkdir()
    asset.build(out, python=python, pip_options=wheels.offline_pip_options(wheelhouse))
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


def _before_copy(
    built: Path, target: Path, rev: str, python: runtime_python.RuntimePython, scratch: Path
) -> Path:
    """``built`` with the ``oms_webhooks`` package of git revision ``rev``, compiled alike."""
    archive = subprocess.run(
        ["git", "-C", str(c.REPO_ROOT), "archive", "--format=tar", rev, "functions/oms_webhooks"],
        capture_output=True,
        check=True,
    ).stdout
    source = scratch / f"rev-{rev}"
    with tarfile.open(fileobj=BytesIO(archive)) as tar:
        tar.extractall(source, filter="data")
    shutil.copytree(built, target, ignore=shutil.ignore_patterns("oms_webhooks"))
    asset.copy_package(target, source / "functions" / "oms_webhooks")
    runtime_python.compile_bytecode(target, python)
    _writable(target, False)
    return target


def _writable(directory: Path, writable: bool) -> None:
    for path in [directory, *directory.rglob("*")]:
        mode = path.stat().st_mode
        path.chmod(mode | 0o200 if writable else mode & ~0o222)


# -- the first events -----------------------------------------------------------------


@dataclass
class Events:
    """One event file per handler and run (router and dispatcher events are used once)."""

    files: dict[str, list[Path]]
    receiver: c.FastReceiver
    env: dict[str, str]


def _capture_api_events(token: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The authorizer's and the api's events of ``GET /whisperer/hooks/`` (the gateway's)."""
    from werkzeug.test import Client

    from oms_webhooks.handlers import authorizer
    from oms_webhooks_local.gateway import LocalApiGateway

    seen: dict[str, dict[str, Any]] = {}

    def authorize(event: dict[str, Any], context: Any) -> dict[str, Any]:
        seen["authorizer"] = json.loads(json.dumps(event))
        return dict(authorizer.handler(event, context))

    def api(event: dict[str, Any], context: Any) -> dict[str, Any]:
        seen["api"] = json.loads(json.dumps(event))
        return {"statusCode": 200, "headers": {}, "body": "{}"}

    gateway = LocalApiGateway(api_handler=api, authorizer_handler=authorize)
    response = Client(gateway).get("/whisperer/hooks/", headers={"Authorization": f"Token {token}"})
    if response.status_code != 200 or set(seen) != {"authorizer", "api"}:
        raise CrossCheckFailed(f"the gateway did not pass the request: {response.status_code}")
    return seen["authorizer"], seen["api"]


def _receive(sqs: Any, queue_url: str, count: int) -> list[dict[str, Any]]:
    messages: dict[str, dict[str, Any]] = {}

    def more() -> bool:
        got = sqs.receive_message(
            QueueUrl=queue_url,
            MaxNumberOfMessages=10,
            WaitTimeSeconds=1,
            VisibilityTimeout=600,
            AttributeNames=["All"],
            MessageAttributeNames=["All"],
        )
        for message in got.get("Messages", []):
            messages[message["MessageId"]] = message
        return len(messages) >= count

    if not c.wait_until(more, timeout=60, interval=0):
        raise CrossCheckFailed(f"{len(messages)} of {count} messages on {queue_url}")
    return list(messages.values())[:count]


def _sqs_event(sqs: Any, queue_url: str, message: dict[str, Any]) -> dict[str, Any]:
    from oms_webhooks_local.pollers import lambda_sqs_record

    arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])
    return {"Records": [lambda_sqs_record(message, arn["Attributes"]["QueueArn"], "us-east-1")]}


def _prepare_events(runs: int, scratch: Path) -> Events:
    """Data on moto and one event file per handler and run (module docstring)."""
    from oms_webhooks.api.tokens import create_token
    from oms_webhooks.aws_clients import client
    from oms_webhooks.handlers import router
    from oms_webhooks.resources import DELIVERY_QUEUE, INGRESS_QUEUE
    from oms_webhooks_local.lambda_context import FakeLambdaContext

    tenant = f"bench-cold-{uuid.uuid4().hex[:8]}"
    _info, token = create_token(tenant)
    target = c.receiver()
    uses = 2 * runs  # router and dispatcher events: one per run of each variant that sends
    for i in range(uses):
        c.subscribe(tenant, DISPATCHER_TYPE, target.url(f"/d{i}"))
    c.subscribe(tenant, ROUTER_TYPE, target.url("/r"))
    sqs = client("sqs")
    ingress = sqs.get_queue_url(QueueName=INGRESS_QUEUE.name)["QueueUrl"]
    delivery = sqs.get_queue_url(QueueName=DELIVERY_QUEUE.name)["QueueUrl"]
    # The dispatcher's: one event to `uses` subscriptions, routed here → `uses` messages.
    c.publish_paced(DISPATCHER_TYPE, [{"seq": 0, "bench": "cold"}])
    (routed,) = _receive(sqs, ingress, 1)
    outcome = router.handler(_sqs_event(sqs, ingress, routed), FakeLambdaContext("router"))
    if outcome.get("batchItemFailures"):
        raise CrossCheckFailed(f"routing the dispatcher's event failed: {outcome}")
    sqs.delete_message(QueueUrl=ingress, ReceiptHandle=routed["ReceiptHandle"])
    deliveries = _receive(sqs, delivery, uses)
    # The router's: `uses` events on the ingress queue, each routed once by a child.
    c.publish_paced(ROUTER_TYPE, [{"seq": i, "bench": "cold"} for i in range(uses)])
    ingested = _receive(sqs, ingress, uses)
    authorizer_event, api_event = _capture_api_events(token)
    per_handler = {
        "authorizer": [authorizer_event] * runs,
        "api": [api_event] * runs,
        "router": [_sqs_event(sqs, ingress, m) for m in ingested],
        "dispatcher": [_sqs_event(sqs, delivery, m) for m in deliveries],
    }
    files: dict[str, list[Path]] = {}
    for handler, events in per_handler.items():
        files[handler] = []
        for i, event in enumerate(events):
            path = scratch / f"event-{handler}-{i}.json"
            path.write_text(json.dumps(event), encoding="utf-8")
            files[handler].append(path)
    env = {**LAMBDA_ENV}
    env.update({k: v for k, v in os.environ.items() if k.startswith(("AWS_", "OMS_WEBHOOKS_"))})
    if not env.get("AWS_ENDPOINT_URL", "").startswith(f"http://{c.HOST}:"):
        raise c.NonLoopbackConnection(
            f"AWS endpoint not on {c.HOST}: {env.get('AWS_ENDPOINT_URL')}"
        )
    return Events(files, target, env)


def _check_first_event(handler: str, result: Any) -> None:
    """The first event did what it should (module docstring), else the figure is void."""
    if handler == "authorizer":
        statements = (result.get("policyDocument") or {}).get("Statement") or [{}]
        ok = statements[0].get("Effect") == "Allow"
    elif handler == "api":
        ok = result.get("statusCode") == 200 and "results" in json.loads(result.get("body") or "{}")
    else:
        ok = isinstance(result, dict) and result.get("batchItemFailures") == []
    if not ok:
        raise CrossCheckFailed(f"{handler}'s first event failed: {str(result)[:300]}")


# -- the runs -------------------------------------------------------------------------


def _run_child(
    python: runtime_python.RuntimePython,
    directory: Path,
    runtime_dir: Path,
    handler: str,
    event_file: Path | None,
    env: Mapping[str, str],
) -> dict[str, Any]:
    done = subprocess.run(
        [
            python.executable,
            "-I",
            "-B",
            "-c",
            FIRST_EVENT_PROBE,
            str(directory),
            str(runtime_dir),
            f"oms_webhooks.handlers.{handler}",
            str(event_file or "-"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env=dict(env),
    )
    if done.returncode != 0:
        tail = "\n".join(done.stderr.strip().splitlines()[-15:])
        raise CrossCheckFailed(f"{handler}'s first event failed (exit {done.returncode}):\n{tail}")
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def _measure(
    python: runtime_python.RuntimePython,
    variants: dict[str, Path],
    runtime_dir: Path,
    events: Events,
    runs: int,
) -> dict[str, dict[str, dict[str, list[float]]]]:
    """Milliseconds per figure (import, first_event, wall and CPU), variant and handler."""
    times: dict[str, dict[str, dict[str, list[float]]]] = {
        figure: {v: {h: [] for h in HANDLERS} for v in variants}
        for figure in ("import", "first_event", "import_cpu", "first_event_cpu")
    }
    files_before = {v: _file_count(d) for v, d in variants.items()}
    posts_before = len(events.receiver.requests)
    event_runs = 0
    for run in range(runs):
        for handler in HANDLERS:
            for variant, directory in variants.items():
                if variant == "source":
                    child = _run_child(python, directory, runtime_dir, handler, None, LAMBDA_ENV)
                    compiled = child["compiled_import"]
                    if not [p for p in compiled if Path(p).is_relative_to(directory)]:
                        raise CrossCheckFailed(f"{handler}: the source-only asset compiled nothing")
                else:
                    event_file = events.files[handler][
                        run * 2 + (variant == "bytecode")
                        if handler in ("router", "dispatcher")
                        else 0
                    ]
                    child = _run_child(
                        python, directory, runtime_dir, handler, event_file, events.env
                    )
                    _check_first_event(handler, child["result"])
                    compiled = child["compiled_import"] + child["compiled_event"]
                    mine = [p for p in compiled if Path(p).is_relative_to(directory)]
                    if mine:
                        raise CrossCheckFailed(
                            f"{handler}: compiled {len(mine)} files, e.g. {mine[0]}"
                        )
                    for figure in ("first_event", "first_event_cpu"):
                        times[figure][variant][handler].append(child[figure] * 1000)
                    event_runs += handler == "dispatcher"
                if not Path(child["file"]).is_relative_to(directory):
                    raise CrossCheckFailed(f"{handler} came from {child['file']}, not the asset")
                for figure in ("import", "import_cpu"):
                    times[figure][variant][handler].append(child[figure] * 1000)
    for variant, directory in variants.items():
        if _file_count(directory) != files_before[variant]:
            raise CrossCheckFailed(f"the {variant} asset was written to during the imports")
    posts = len(events.receiver.requests) - posts_before
    if posts != event_runs:
        raise CrossCheckFailed(f"{event_runs} dispatcher first events, {posts} POSTs received")
    return times


def _boto3_ms(
    python: runtime_python.RuntimePython, runtime_dir: Path, empty: Path, runs: int
) -> float:
    samples = [
        asset_import.import_in_new_interpreter(
            python, empty, runtime_dir, "boto3", env=LAMBDA_ENV
        ).seconds
        for _ in range(runs)
    ]
    return round(statistics.median(samples) * 1000, 1)


def _null(reason: str) -> dict[str, Any]:
    return {"import_ms": None, "import_ms_source": None, "cold_start_ms": None, "reason": reason}


def _medians(per: dict[str, dict[str, list[float]]]) -> dict[str, dict[str, float]]:
    return {
        v: {h: round(statistics.median(ms), 1) for h, ms in hs.items() if ms}
        for v, hs in per.items()
    }


def _run(args: argparse.Namespace) -> tuple[dict[str, Any], Any, float | None]:
    python = runtime_python.find_runtime_python()
    if python is None:
        return _null(f"no Python {infra_constants.PYTHON_VERSION} on this machine"), None, None
    if args.no_asset:
        return _null("skipped (--no-asset)"), None, None
    wheelhouse = wheels.wheelhouse_dir()
    platform_tag = wheels.host_platform()
    if platform_tag is None or not any(wheelhouse.glob("*.whl")):
        return _null(f"no wheelhouse at {wheelhouse} (make wheelhouse) or not Linux"), None, None
    with tempfile.TemporaryDirectory(prefix="bench-cold-") as scratch:
        tmp = Path(scratch)
        options = wheels.offline_pip_options(wheelhouse)
        c.note("building the asset for this machine and the runtime's boto3")
        built = tmp / "built"
        built.mkdir()
        asset.build(built, python=python, platform_tag=platform_tag, pip_options=options)
        runtime_dir = tmp / "runtime"
        runtime_dir.mkdir()
        asset_import.install_runtime_standin(
            runtime_dir, python, platform_tag=platform_tag, pip_options=options
        )
        variants = {
            "source": _read_only_copy(built, tmp / "source", bytecode=False),
            "before": _before_copy(built, tmp / "before", args.before, python, tmp),
            "bytecode": _read_only_copy(built, tmp / "bytecode", bytecode=True),
        }
        (tmp / "empty").mkdir()
        c.note("starting moto and preparing the first events")
        with c.local_stack(pollers=False):
            events = _prepare_events(args.n, tmp)
            load_before = os.getloadavg()
            c.note(f"cold-starting each handler {args.n} times per variant")
            try:
                boto3_ms = _boto3_ms(python, runtime_dir, tmp / "empty", args.n)
                times = _measure(python, variants, runtime_dir, events, args.n)
            finally:
                events.receiver.stop()
                for directory in variants.values():  # writable again, for the clean-up
                    _writable(directory, True)
            load_after = os.getloadavg()
        c.note("building the deployment (arm64) asset")
        deployment = _deployment_asset(python, wheelhouse, tmp)
    imports = _medians(times["import"])
    first = {v: per for v, per in _medians(times["first_event"]).items() if per}
    cpu = {
        "import": _medians(times["import_cpu"]),
        "first_event": {v: p for v, p in _medians(times["first_event_cpu"]).items() if p},
    }
    cold = {v: {h: round(imports[v][h] + first[v][h], 1) for h in HANDLERS} for v in first}
    new, old = imports["bytecode"], imports["source"]
    figures = {
        "import_ms": new,
        "import_ms_before": imports["before"],
        "import_ms_source": old,
        "first_event_ms": first["bytecode"],
        "first_event_ms_before": first["before"],
        "cold_start_ms": cold["bytecode"],
        "cold_start_ms_before": cold["before"],
        "cpu_ms": cpu,
        "import_ms_spread": {
            v: {h: [round(min(ms), 1), round(max(ms), 1)] for h, ms in per.items()}
            for v, per in times["import"].items()
        },
        "ratio_per_handler": {h: c.ratio(new[h], imports["before"][h]) for h in HANDLERS},
        "before_rev": args.before,
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
    baseline = {
        "import_ms_before": imports["before"],
        "cold_start_ms_before": cold["before"],
        "import_ms_source": old,
        "import_boto3_ms": boto3_ms,
    }
    return figures, baseline, c.ratio(max(new.values()), max(imports["before"].values()))


def main() -> None:
    """Run the benchmark and print its JSON line."""
    args = c.parse_args(__doc__ or NAME, default_n=7, extra=_extra)
    figures, baseline, ratio = _run(args)
    c.emit(NAME, n=args.n, baseline=baseline, ratio=ratio, **figures)


if __name__ == "__main__":
    main()
