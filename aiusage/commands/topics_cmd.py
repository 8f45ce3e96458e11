"""``aiusage topics create``: create the usage topic and its dead-letter topic."""

from __future__ import annotations

import argparse
from typing import Any

from aiusage.kafka_topics import ensure_topics
from aiusage.settings import KafkaSettings, load


def register(commands: Any) -> None:
    parser = commands.add_parser(
        "topics",
        help="manage the Kafka topics",
        description="Manage the Kafka topics (brokers should not auto-create them).",
    )
    actions = parser.add_subparsers(
        title="actions", dest="action", metavar="ACTION", parser_class=type(parser)
    )
    actions.required = True
    create = actions.add_parser(
        "create",
        help="create AIUSAGE_KAFKA_TOPIC and its .dlq if missing",
        description="Create the usage topic and its dead-letter topic with "
        "AIUSAGE_KAFKA_PARTITIONS partitions; existing topics are left alone.",
    )
    create.set_defaults(func=run_create)


def run_create(args: argparse.Namespace) -> int:
    settings = load(KafkaSettings)
    report = ensure_topics(settings)
    for name in report.created:
        print(f"created {name} ({settings.partitions} partitions)")
    for name in report.existing:
        print(f"exists  {name}")
    return 0
