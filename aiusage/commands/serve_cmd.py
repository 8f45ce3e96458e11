"""``aiusage serve``: every component in one process (the embedded mode's way to run)."""

from __future__ import annotations

import argparse
import signal
import threading
from types import FrameType
from typing import Any

from aiusage.commands.consume_cmd import install_stop_signals
from aiusage.logsetup import configure
from aiusage.settings import ClickHouseSettings, KafkaSettings, LogSettings, MetricsSettings, load


def register(commands: Any) -> None:
    parser = commands.add_parser(
        "serve",
        help="run the consumer, the aggregator and the HTTP API in one process",
        description="Run `consume`, `aggregate run` and `query serve` in one process that "
        "shares one ClickHouse handle: the way to run embedded mode (a chDB directory is "
        "opened by one process). SIGTERM or SIGINT stops all three; SIGUSR1 asks the "
        "aggregator for a catch-up now.",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from aggregator.settings import AggregatorSettings
    from aiusage.serve import ServeConfig, serve
    from consumer.settings import ConsumerSettings
    from query.settings import QuerySettings

    config = ServeConfig(
        kafka=load(KafkaSettings),
        clickhouse=load(ClickHouseSettings),
        consumer=load(ConsumerSettings),
        aggregator=load(AggregatorSettings),
        query=load(QuerySettings),
        metrics=load(MetricsSettings),
    )
    secrets = config.kafka.secrets() + config.clickhouse.secrets() + config.query.secrets()
    configure(load(LogSettings), secrets=secrets)
    stop, catch_up_now = threading.Event(), threading.Event()
    install_stop_signals(stop)

    def request_catch_up(signum: int, frame: FrameType | None) -> None:
        catch_up_now.set()

    signal.signal(signal.SIGUSR1, request_catch_up)
    return serve(config, stop, catch_up_now)
