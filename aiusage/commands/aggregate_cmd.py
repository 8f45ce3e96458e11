"""``aiusage aggregate``: the daily rollup daemon and its operator commands."""

from __future__ import annotations

import argparse
import threading
from datetime import timedelta
from typing import Any

from aiusage.clickhouse import connect
from aiusage.clock import SystemClock
from aiusage.commands.argtypes import day
from aiusage.commands.consume_cmd import install_stop_signals
from aiusage.errors import ConfigError
from aiusage.logsetup import configure
from aiusage.schema import context_for, migrate
from aiusage.settings import ClickHouseSettings, LogSettings, MetricsSettings, load

MAX_BACKFILL_DAYS = 36_500


def register(commands: Any) -> None:
    parser = commands.add_parser(
        "aggregate",
        help="daily per-organization rollups: the daemon and operator commands",
        description="Roll ai_usage_log up into ai_usage_daily_aggregates, one UTC day at a "
        "time. Re-running a day is idempotent (ReplacingMergeTree, highest version wins).",
    )
    actions = parser.add_subparsers(
        title="actions", dest="action", metavar="ACTION", parser_class=type(parser)
    )
    actions.required = True
    run = actions.add_parser(
        "run",
        help="the daemon: catch up, then run on AIUSAGE_AGGREGATOR_SCHEDULE (UTC)",
        description="Aggregate every pending day up to yesterday now, then at every tick "
        "of the cron schedule. Pending days are the days not yet aggregated (back to the "
        "earliest raw day, at most AIUSAGE_AGGREGATOR_BACKFILL_MAX_DAYS) and the days that "
        "received late rows. SIGTERM stops it between two days.",
    )
    run.set_defaults(func=run_daemon)
    once = actions.add_parser(
        "once", help="aggregate one day", description="Aggregate one UTC day now."
    )
    once.add_argument("--date", type=day, required=True, metavar="YYYY-MM-DD")
    once.set_defaults(func=run_once)
    backfill = actions.add_parser(
        "backfill",
        help="aggregate a range of days, with a progress bar",
        description="Aggregate every UTC day from --start to --end, both included.",
    )
    backfill.add_argument("--start", type=day, required=True, metavar="YYYY-MM-DD")
    backfill.add_argument("--end", type=day, required=True, metavar="YYYY-MM-DD")
    backfill.set_defaults(func=run_backfill)


def _open() -> tuple[Any, Any]:
    from aggregator.runner import Aggregator
    from aggregator.settings import AggregatorSettings

    clickhouse = load(ClickHouseSettings)
    settings = load(AggregatorSettings)
    configure(load(LogSettings), secrets=clickhouse.secrets())
    client = connect(clickhouse)
    ctx = context_for(clickhouse)
    migrate(client, ctx)
    return client, Aggregator(client, ctx, settings, SystemClock())


def run_once(args: argparse.Namespace) -> int:
    client, aggregator = _open()
    try:
        result = aggregator.aggregate_day(args.date)
    finally:
        client.close()
    print(f"aggregated {result.day}: {result.rows} organizations in {result.seconds:.2f}s")
    return 0


def run_backfill(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    if args.end < args.start:
        raise ConfigError(f"--end {args.end} is before --start {args.start}")
    count = (args.end - args.start).days + 1
    if count > MAX_BACKFILL_DAYS:
        raise ConfigError(f"{count} days is more than {MAX_BACKFILL_DAYS}; split the range")
    days = [args.start + timedelta(days=n) for n in range(count)]
    client, aggregator = _open()
    try:
        with tqdm(total=count, unit="day", desc="aggregating") as bar:
            report = aggregator.run(days, progress=lambda _: bar.update(1))
    finally:
        client.close()
    seconds = sum(result.seconds for result in report.days)
    print(
        f"backfill {args.start}..{args.end}: {len(report.days)}/{count} days, "
        f"{report.rows} rollup rows in {seconds:.1f}s"
    )
    if not report.ok:
        print(f"stopped at {report.failed}: {report.error}")
        return 1
    return 0


def run_daemon(args: argparse.Namespace) -> int:
    from aggregator.daemon import Daemon
    from aiusage.observability import ObservabilityServer

    metrics_settings = load(MetricsSettings)
    client, aggregator = _open()
    stop = threading.Event()
    install_stop_signals(stop)
    daemon = Daemon(aggregator, aggregator.settings.schedule, SystemClock(), stop)
    server = ObservabilityServer(metrics_settings, aggregator.metrics.registry, daemon.health)
    server.start()
    try:
        daemon.run()
    finally:
        server.stop()
        client.close()
    return 0
