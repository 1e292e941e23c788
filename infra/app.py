#!/usr/bin/env python3
"""CDK entry point: ``cdk synth`` runs it, and so can ``python infra/app.py``.

Run directly it accepts ``-c key=value`` like the CLI (``python infra/app.py
-c skipBundling=true``) and writes ``cdk.out/``. No AWS account, credentials
or Docker are needed: the stack is environment-agnostic and the code asset is
bundled with the local pip.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from oms_webhooks_infra.app import build_app


def main(argv: list[str] | None = None) -> None:
    """Synthesize the app into the cloud assembly directory."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "-c", "--context", action="append", default=[], metavar="KEY=VALUE", help="context value"
    )
    parser.add_argument("-o", "--output", default=None, help="cloud assembly directory")
    args = parser.parse_args(argv)
    context = dict(item.split("=", 1) for item in args.context)
    app, _ = build_app(context, outdir=args.output)
    app.synth()


if __name__ == "__main__":
    main()
