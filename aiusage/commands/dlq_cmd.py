"""``aiusage dlq replay``: re-publish dead letters to the usage topic."""

from __future__ import annotations

import argparse
from typing import Any

from aiusage.commands.argtypes import aware_datetime
from aiusage.logsetup import configure
from aiusage.settings import KafkaSettings, LogSettings, load
from consumer.processing import ERROR_KINDS


def register(commands: Any) -> None:
    parser = commands.add_parser(
        "dlq",
        help="the dead-letter topic",
        description="Inspect and replay <topic>.dlq.",
    )
    actions = parser.add_subparsers(
        title="actions", dest="action", metavar="ACTION", parser_class=type(parser)
    )
    actions.required = True
    replay = actions.add_parser(
        "replay",
        help="re-publish dead letters, unchanged, to the usage topic",
        description="Read <topic>.dlq up to its end as of now and re-publish the matching "
        "messages, unchanged, to the usage topic (for example after a fix to the consumer or "
        "its limits). Events still invalid are dead-lettered again, after this replay's "
        "snapshot, so a replay never loops. Run with --dry-run first.",
    )
    replay.add_argument(
        "--kind", action="append", choices=ERROR_KINDS, default=[], help="repeatable"
    )
    replay.add_argument("--since", type=aware_datetime, help="dead-lettered at or after")
    replay.add_argument("--until", type=aware_datetime, help="dead-lettered before")
    replay.add_argument("--dry-run", action="store_true", help="count, publish nothing")
    replay.set_defaults(func=run_replay)


def run_replay(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from aiusage.errors import ConfigError
    from consumer.replay import ReplayFilter, replay

    if args.since and args.until and args.until <= args.since:
        raise ConfigError("--until must be after --since")
    settings = load(KafkaSettings)
    configure(load(LogSettings), secrets=settings.secrets())
    chosen = ReplayFilter(frozenset(args.kind), args.since, args.until)
    with tqdm(unit="msg", desc=f"reading {settings.dlq_topic}") as bar:
        report = replay(settings, chosen, dry_run=args.dry_run, progress=bar.update)
    verb = "would replay" if args.dry_run else "replayed"
    kinds = ", ".join(f"{kind}: {count}" for kind, count in sorted(report.by_kind.items()))
    print(
        f"{verb} {report.replayed} of {report.scanned} dead letters to {settings.topic}"
        + (f" ({kinds})" if kinds else "")
    )
    return 0
