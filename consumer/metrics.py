"""The consumer's Prometheus metrics, in a registry of its own."""

from __future__ import annotations

import json
import logging
from typing import Literal

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

log = logging.getLogger(__name__)

MetricName = Literal[
    "aiusage_consumer_events_consumed",
    "aiusage_consumer_events_inserted",
    "aiusage_consumer_events_rejected",
    "aiusage_consumer_write_failures",
    "aiusage_consumer_batch_rows",
    "aiusage_consumer_insert_seconds",
    "aiusage_consumer_lag",
    "aiusage_consumer_last_commit_timestamp_seconds",
    "aiusage_consumer_paused",
    "aiusage_consumer_assigned_partitions",
]

BATCH_BUCKETS = (1, 10, 100, 1_000, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 1_000_000)


class ConsumerMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.consumed = Counter(
            _n("aiusage_consumer_events_consumed"), "Messages read from the topic", registry=r
        )
        self.inserted = Counter(
            _n("aiusage_consumer_events_inserted"), "Events written to ai_usage_log", registry=r
        )
        self.rejected = Counter(
            _n("aiusage_consumer_events_rejected"),
            "Events sent to the dead-letter topic, by reason",
            ["reason"],
            registry=r,
        )
        self.write_failures = Counter(
            _n("aiusage_consumer_write_failures"),
            "Failed inserts, by whether they are retried",
            ["retryable"],
            registry=r,
        )
        self.batch_rows = Histogram(
            _n("aiusage_consumer_batch_rows"), "Rows per insert", buckets=BATCH_BUCKETS, registry=r
        )
        self.insert_seconds = Histogram(
            _n("aiusage_consumer_insert_seconds"), "Insert latency", registry=r
        )
        self.lag = Gauge(
            _n("aiusage_consumer_lag"),
            "Messages behind the end of each partition",
            ["topic", "partition"],
            registry=r,
        )
        self.last_commit = Gauge(
            _n("aiusage_consumer_last_commit_timestamp_seconds"),
            "When offsets were last committed",
            registry=r,
        )
        self.assigned = Gauge(
            _n("aiusage_consumer_assigned_partitions"),
            "Partitions this consumer owns",
            registry=r,
        )
        self.paused = Gauge(
            _n("aiusage_consumer_paused"),
            "1 while consumption is paused because writes fail",
            registry=r,
        )

    def record_statistics(self, stats_json: str) -> None:
        """librdkafka's statistics callback: per-partition consumer lag."""
        try:
            stats = json.loads(stats_json)
            for topic, body in stats.get("topics", {}).items():
                for partition, pstats in body.get("partitions", {}).items():
                    lag = pstats.get("consumer_lag", -1)
                    if partition != "-1" and lag >= 0:
                        self.lag.labels(topic, partition).set(lag)
        except (ValueError, AttributeError):
            log.debug("unreadable librdkafka statistics", exc_info=True)


def _n(name: MetricName) -> str:
    return name
