"""Helpers for tests that run the pipeline against the real broker and ClickHouse.

Expected totals come from the load generator (computed from the values it made);
stored totals come from ClickHouse with FINAL. Neither uses the code under test.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from clickhouse_connect.driver.client import Client
from confluent_kafka import Consumer, TopicPartition

from aiusage.loadgen import LoadGenerator, Workload
from aiusage.producer import UsageProducer
from aiusage.settings import ClickHouseSettings, KafkaSettings, MetricsSettings
from consumer.metrics import ConsumerMetrics
from consumer.service import ConsumerConfig, consume
from consumer.settings import ConsumerSettings
from consumer.writer import RowWriter

FIXED_END = datetime(2026, 11, 30, 18, 0, tzinfo=UTC)


def wait_for(condition: Callable[[], bool], timeout_s: float = 60, what: str = "") -> None:
    """Poll a condition until it holds; fail with ``what`` after the timeout."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout_s}s waiting for {what or condition}")


def produce(settings: KafkaSettings, workload: Workload) -> dict[str, Any]:
    generator = LoadGenerator(workload)
    with UsageProducer(settings) as producer:
        for message in generator:
            producer.send_raw(message.payload, message.key, message.event_id)
    return generator.expected()


def expected_messages(expected: dict[str, Any]) -> int:
    return expected["unique_events"] + expected["duplicates"] + sum(expected["invalid"].values())


def stored_totals(client: Client, database: str) -> dict[str, dict[str, dict[str, Any]]]:
    rows = client.query(
        f"SELECT organization_id, toString(toDate(timestamp)), count(), sum(cost_usd), "
        "sum(input_tokens), sum(cached_tokens), sum(output_tokens), "
        "sum(if(input_tokens = 0, 0, cached_tokens / input_tokens)) "
        f"FROM `{database}`.ai_usage_log FINAL GROUP BY 1, 2"
    ).result_rows
    totals: dict[str, dict[str, dict[str, Any]]] = {}
    for org, day, calls, cost, inp, cached, out, rate_sum in rows:
        totals.setdefault(org, {})[day] = {
            "calls": calls,
            "cost": Decimal(cost),
            "input_tokens": inp,
            "cached_tokens": cached,
            "output_tokens": out,
            "cache_hit_rate_sum": rate_sum,
        }
    return totals


def assert_totals_match(stored: dict[str, Any], expected: dict[str, Any]) -> None:
    want = expected["totals"]
    assert set(stored) == set(want), "organizations differ"
    for org, days in want.items():
        assert set(stored[org]) == set(days), f"days differ for {org}"
        for day, values in days.items():
            got = stored[org][day]
            context = f"{org} {day}"
            assert got["calls"] == values["calls"], context
            assert got["cost"] == Decimal(values["cost"]), context
            for key in ("input_tokens", "cached_tokens", "output_tokens"):
                assert got[key] == values[key], f"{context} {key}"
            assert abs(got["cache_hit_rate_sum"] - values["cache_hit_rate_sum"]) < 1e-9, context


def raw_row_count(client: Client, database: str, final: bool = True) -> int:
    suffix = " FINAL" if final else ""
    return int(client.command(f"SELECT count() FROM `{database}`.ai_usage_log{suffix}"))


def committed_offsets(settings: KafkaSettings, partitions: int) -> dict[int, int]:
    probe = Consumer({**settings.client_config(), "group.id": settings.group_id})
    try:
        committed = probe.committed(
            [TopicPartition(settings.topic, p) for p in range(partitions)], timeout=10
        )
    finally:
        probe.close()
    return {tp.partition: tp.offset for tp in committed}


def caught_up(settings: KafkaSettings, partitions: int) -> bool:
    """Whether the group committed every partition to its end (an empty one needs none)."""
    committed = committed_offsets(settings, partitions)
    ends = end_offsets(settings, settings.topic, partitions)
    return all(committed[p] == end or (end == 0 and committed[p] < 0) for p, end in ends.items())


def end_offsets(settings: KafkaSettings, topic: str, partitions: int) -> dict[int, int]:
    probe = Consumer({**settings.client_config(), "group.id": "offset-probe"})
    try:
        return {
            p: probe.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1]
            for p in range(partitions)
        }
    finally:
        probe.close()


def fast_consumer_settings(**overrides: Any) -> ConsumerSettings:
    defaults: dict[str, Any] = {
        "batch_max_rows": 5_000,
        "batch_max_wait_s": 0.3,
        "poll_timeout_s": 0.1,
        "backoff_initial_s": 0.1,
        "backoff_max_s": 0.5,
        "statistics_interval_ms": 1000,
        "shutdown_timeout_s": 10,
    }
    return ConsumerSettings(**{**defaults, **overrides})


@dataclass
class ConsumerThread:
    """``consume()`` on a thread of this process (chDB allows one process per directory)."""

    kafka: KafkaSettings
    clickhouse: ClickHouseSettings
    settings: ConsumerSettings = field(default_factory=fast_consumer_settings)
    writer: RowWriter | None = None
    client: Client | None = None
    metrics: ConsumerMetrics = field(default_factory=ConsumerMetrics)
    exit_code: int | None = None
    error: BaseException | None = None

    def __post_init__(self) -> None:
        self.stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        config = ConsumerConfig(self.kafka, self.clickhouse, self.settings, MetricsSettings(port=0))
        try:
            self.exit_code = consume(
                config, self.stop, client=self.client, writer=self.writer, metrics=self.metrics
            )
        except BaseException as err:  # surfaced to the test by join()
            self.error = err

    def start(self) -> ConsumerThread:
        self._thread.start()
        return self

    def join(self, timeout_s: float = 60) -> int | None:
        self.stop.set()
        self._thread.join(timeout_s)
        assert not self._thread.is_alive(), "the consumer did not stop in time"
        return self.exit_code

    def sample(self, name: str, **labels: str) -> float:
        return self.metrics.registry.get_sample_value(name, labels or None) or 0.0

    @property
    def consumed(self) -> float:
        return self.sample("aiusage_consumer_events_consumed_total")
