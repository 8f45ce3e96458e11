"""``aiusage produce``: a seeded synthetic workload, with its expected totals."""

from __future__ import annotations

import argparse
import json
import logging
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aiusage.commands.argtypes import (
    aware_datetime,
    fraction,
    non_negative_int,
    positive_float,
    positive_int,
)
from aiusage.errors import ConfigError
from aiusage.kafka_topics import ensure_topics
from aiusage.loadgen import LoadGenerator, Workload
from aiusage.producer import UsageProducer
from aiusage.settings import KafkaSettings, load

log = logging.getLogger(__name__)


def register(commands: Any) -> None:
    parser = commands.add_parser(
        "produce",
        help="publish a seeded synthetic workload and write its expected totals",
        description="Publish N usage events for K organizations over the D days before --end "
        "to AIUSAGE_KAFKA_TOPIC, with optional invalid events and resent duplicates. The "
        "expected totals per organization and UTC day are computed from the generated "
        "values and written as JSON.",
    )
    parser.add_argument("--events", "-n", type=non_negative_int, default=10_000)
    parser.add_argument("--orgs", "-k", type=positive_int, default=20)
    parser.add_argument("--days", "-d", type=positive_int, default=30)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--rate", type=positive_float, default=None, help="events per second (default: max)"
    )
    parser.add_argument("--invalid-fraction", type=fraction, default=0.0)
    parser.add_argument("--duplicate-fraction", type=fraction, default=0.0)
    parser.add_argument(
        "--end", type=aware_datetime, default=None, help="end of the window (default: now)"
    )
    parser.add_argument(
        "--expected", type=Path, default=None, help="write the expected totals to this JSON file"
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.invalid_fraction + args.duplicate_fraction >= 1:
        raise ConfigError("--invalid-fraction plus --duplicate-fraction must be below 1")
    settings = load(KafkaSettings)
    workload = Workload(
        events=args.events,
        organizations=args.orgs,
        days=args.days,
        seed=args.seed,
        invalid_fraction=args.invalid_fraction,
        duplicate_fraction=args.duplicate_fraction,
        end=args.end or datetime.now(UTC),
    )
    ensure_topics(settings)
    generator = LoadGenerator(workload)
    started = time.monotonic()
    sent = 0
    with UsageProducer(settings, linger_ms=50) as producer:
        for message in generator:
            producer.send_raw(message.payload, message.key, message.event_id)
            sent += 1
            if args.rate:
                ahead = sent / args.rate - (time.monotonic() - started)
                if ahead > 0:
                    time.sleep(ahead)
    elapsed = time.monotonic() - started
    expected = generator.expected()
    if args.expected:
        args.expected.parent.mkdir(parents=True, exist_ok=True)
        args.expected.write_text(json.dumps(expected, indent=1, sort_keys=True) + "\n")
    invalid = sum(expected["invalid"].values())
    print(
        f"sent {sent} messages to {settings.topic} in {elapsed:.1f}s "
        f"({sent / max(elapsed, 1e-9):,.0f}/s): {expected['unique_events']} unique events, "
        f"{expected['duplicates']} resent duplicates, {invalid} invalid"
    )
    return 0
