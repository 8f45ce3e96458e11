"""The aggregator's Prometheus metrics, in a registry of its own."""

from __future__ import annotations

from typing import Literal

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

MetricName = Literal[
    "aiusage_aggregator_last_success_timestamp_seconds",
    "aiusage_aggregator_run_seconds",
    "aiusage_aggregator_day_seconds",
    "aiusage_aggregator_days_pending",
    "aiusage_aggregator_rows_written",
    "aiusage_aggregator_failed_runs",
]


def _n(name: MetricName) -> str:
    return name


class AggregatorMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.last_success = Gauge(
            _n("aiusage_aggregator_last_success_timestamp_seconds"),
            "When a scheduled run last finished without failure",
            registry=r,
        )
        self.run_seconds = Histogram(
            _n("aiusage_aggregator_run_seconds"), "Duration of a scheduled run", registry=r
        )
        self.day_seconds = Histogram(
            _n("aiusage_aggregator_day_seconds"), "Duration of one day's aggregation", registry=r
        )
        self.days_pending = Gauge(
            _n("aiusage_aggregator_days_pending"), "Days still to aggregate in this run", registry=r
        )
        self.rows_written = Counter(
            _n("aiusage_aggregator_rows_written"), "Rollup rows written", registry=r
        )
        self.failed_runs = Counter(
            _n("aiusage_aggregator_failed_runs"), "Scheduled runs that failed", registry=r
        )
