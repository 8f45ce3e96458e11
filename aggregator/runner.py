"""Aggregating days: one day at a time, recorded in the run log.

A day's rollup is written by one INSERT ... SELECT whose rows carry a version: the
run's snapshot time on the ClickHouse server, in milliseconds. ReplacingMergeTree keeps
the highest version of each (organization, day), so running a day once, ten times, or
from two processes at once leaves the same visible rollup, and every read uses FINAL.
"""

from __future__ import annotations

import logging
import socket
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

from clickhouse_connect.driver.client import Client

from aggregator import sql
from aggregator.metrics import AggregatorMetrics
from aggregator.settings import AggregatorSettings
from aiusage.clickhouse import scalar
from aiusage.clock import Clock
from aiusage.schema import ddl
from aiusage.schema.ddl import SchemaContext

log = logging.getLogger(__name__)

RUN_LOG_COLUMNS = (
    "day", "version", "status", "started_at", "finished_at", "rows", "error", "runner",
)  # fmt: skip


class AggregationFailed(Exception):
    """A day could not be aggregated; the run log records why."""


@dataclass(frozen=True)
class DayResult:
    day: date
    version: int
    rows: int
    seconds: float


@dataclass
class RunReport:
    days: list[DayResult] = field(default_factory=list)
    failed: date | None = None
    error: str = ""

    @property
    def ok(self) -> bool:
        return self.failed is None

    @property
    def rows(self) -> int:
        return sum(result.rows for result in self.days)


def utc_day(epoch_seconds: float) -> date:
    return datetime.fromtimestamp(epoch_seconds, UTC).date()


class Aggregator:
    def __init__(
        self,
        client: Client,
        ctx: SchemaContext,
        settings: AggregatorSettings,
        clock: Clock,
        metrics: AggregatorMetrics | None = None,
    ) -> None:
        self._client = client
        self._ctx = ctx
        self._settings = settings
        self._clock = clock
        self._metrics = metrics or AggregatorMetrics()
        self._runner = f"{socket.gethostname()}:{id(self):x}"

    @property
    def metrics(self) -> AggregatorMetrics:
        return self._metrics

    @property
    def settings(self) -> AggregatorSettings:
        return self._settings

    # --- one day --------------------------------------------------------------------

    def aggregate_day(self, day: date) -> DayResult:
        """Recompute one UTC day's rollup from the deduplicated raw log."""
        started = self._clock.monotonic()
        version = int(scalar(self._client, sql.server_now_ms()))
        started_at = datetime.fromtimestamp(version / 1000, UTC)
        self._record(day, version, "running", started_at)
        params = {"day": day, "version": version}
        try:
            self._client.command(sql.aggregate_day(self._ctx), parameters=params)
            rows = int(scalar(self._client, sql.rows_of_version(self._ctx), params))
        except Exception as err:
            message = " ".join(str(err).split())[:1000]
            self._record(day, version, "failed", started_at, error=message)
            raise AggregationFailed(f"aggregating {day} failed: {message}") from err
        self._record(day, version, "done", started_at, rows=rows)
        seconds = self._clock.monotonic() - started
        self._metrics.rows_written.inc(rows)
        self._metrics.day_seconds.observe(seconds)
        log.info(
            "aggregated %s: %d organizations in %.2fs (version %d)", day, rows, seconds, version
        )
        return DayResult(day, version, rows, seconds)

    def _record(
        self,
        day: date,
        version: int,
        status: str,
        started_at: datetime,
        *,
        rows: int = 0,
        error: str = "",
    ) -> None:
        finished = None if status == "running" else datetime.now(UTC)
        self._client.insert(
            ddl.AGGREGATION_RUNS,
            [[day, version, status, started_at, finished, rows, error, self._runner]],
            column_names=RUN_LOG_COLUMNS,
            database=self._ctx.database,
        )

    # --- which days -----------------------------------------------------------------

    def pending_days(self, today: date) -> list[date]:
        """Days to (re)aggregate: every day up to yesterday not yet done, back to the
        earliest raw day (at most ``backfill_max_days``), and every done day that has
        received rows since its last snapshot."""
        yesterday = today - timedelta(days=1)
        floor = today - timedelta(days=self._settings.backfill_max_days)
        earliest, has_rows = self._client.query(sql.earliest_raw_day(self._ctx)).result_rows[0]
        if not has_rows:
            return []
        start = max(earliest, floor)
        if start > yesterday:
            return []
        done = self.done_days(start)
        missing = [d for d in _days(start, yesterday) if d not in done]
        dirty = [d for d in self.dirty_days(start) if d <= yesterday]
        return sorted(set(missing) | set(dirty))

    def done_days(self, since: date) -> dict[date, int]:
        rows = self._client.query(sql.done_days(self._ctx), parameters={"since": since})
        return {day: int(version) for day, version in rows.result_rows}

    def dirty_days(self, since: date) -> list[date]:
        rows = self._client.query(
            sql.dirty_days(self._ctx),
            parameters={"since": since, "settle_ms": int(self._settings.ingest_settle_s * 1000)},
        ).result_rows
        return sorted(day for day, _ in rows)

    # --- runs -----------------------------------------------------------------------

    def run(
        self,
        days: Iterable[date],
        progress: Callable[[DayResult], None] | None = None,
        stop: threading.Event | None = None,
    ) -> RunReport:
        """Aggregate ``days`` in order; stop at the first failure (later runs retry it),
        or between two days when ``stop`` is set."""
        report = RunReport()
        for day in days:
            if stop is not None and stop.is_set():
                break
            try:
                result = self.aggregate_day(day)
            except AggregationFailed as err:
                log.error("%s", err)
                report.failed, report.error = day, str(err)
                break
            report.days.append(result)
            if progress is not None:
                progress(result)
        return report

    def catch_up(self, stop: threading.Event | None = None) -> RunReport:
        """The scheduled job: every pending day up to yesterday (UTC)."""
        started = self._clock.monotonic()
        today = utc_day(self._clock.time())
        days = self.pending_days(today)
        self._metrics.days_pending.set(len(days))
        report = self.run(days, lambda _: self._metrics.days_pending.dec(), stop)
        self._metrics.run_seconds.observe(self._clock.monotonic() - started)
        if report.ok:
            self._metrics.last_success.set(self._clock.time())
        return report


def _days(start: date, end: date) -> list[date]:
    return [start + timedelta(days=n) for n in range((end - start).days + 1)]
