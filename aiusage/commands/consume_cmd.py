"""``aiusage consume``: stream usage events from Kafka into ai_usage_log."""

from __future__ import annotations

import argparse
import signal
import threading
from types import FrameType
from typing import Any

from aiusage.logsetup import configure
from aiusage.settings import ClickHouseSettings, KafkaSettings, LogSettings, MetricsSettings, load


def register(commands: Any) -> None:
    parser = commands.add_parser(
        "consume",
        help="stream usage events from Kafka into ClickHouse, exactly once",
        description="Consume AIUSAGE_KAFKA_TOPIC as group AIUSAGE_KAFKA_GROUP_ID: validate, "
        "batch, insert into ai_usage_log, then commit. Invalid events go to <topic>.dlq. "
        "SIGTERM or SIGINT finishes the batch in flight, commits and leaves the group. "
        "Exit codes: 0 clean, 1 a write that retrying cannot fix, 3 the DLQ limit, "
        "75 the last batch could not be written before the shutdown timeout.",
    )
    parser.set_defaults(func=run)


def install_stop_signals(stop: threading.Event) -> None:
    """The first SIGTERM/SIGINT asks for a clean stop; a second one interrupts."""

    def handler(signum: int, frame: FrameType | None) -> None:
        if stop.is_set():
            raise KeyboardInterrupt
        stop.set()

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)


def run(args: argparse.Namespace) -> int:
    from consumer.service import ConsumerConfig, consume
    from consumer.settings import ConsumerSettings

    config = ConsumerConfig(
        kafka=load(KafkaSettings),
        clickhouse=load(ClickHouseSettings),
        consumer=load(ConsumerSettings),
        metrics=load(MetricsSettings),
    )
    configure(load(LogSettings), secrets=config.kafka.secrets() + config.clickhouse.secrets())
    stop = threading.Event()
    install_stop_signals(stop)
    return consume(config, stop)
