"""``aiusage demo``: the whole pipeline on the embedded default, end to end."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from aiusage.commands.argtypes import positive_int


def register(commands: Any) -> None:
    parser = commands.add_parser(
        "demo",
        help="run the whole pipeline on a fresh embedded database and check its numbers",
        description="Start the local broker (unless one answers), run `aiusage serve` on "
        "./.aiusage/demo, publish a workload with invalid events and resent duplicates, "
        "ingest, aggregate, print reports checked against the producer's expected totals, "
        "the dead letters by reason and a chart, then stop everything it started.",
    )
    parser.add_argument("--events", type=positive_int, default=250_000)
    parser.add_argument("--orgs", type=positive_int, default=20)
    parser.add_argument("--days", type=positive_int, default=45)
    parser.add_argument(
        "--workdir", type=Path, default=None, help="default: ./.aiusage/demo (wiped first)"
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from aiusage.demo import run_demo

    return run_demo(args.events, args.orgs, args.days, args.workdir)
