"""``get_org_usage``: one organization's usage over [start, end), exact and explained.

The answer always equals the raw log's answer: the rollup serves only whole UTC days
that are aggregated and clean for the organization; the rest is read from the raw log
(with FINAL). The report says which days came from where, and the rollup watermark.
"""

from __future__ import annotations

import math
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any, Literal

from clickhouse_connect.driver.client import Client

from aiusage.clock import Clock, SystemClock
from aiusage.events import _plain
from aiusage.schema.ddl import SchemaContext
from query import routing, sql
from query.settings import QuerySettings

Granularity = Literal["day", "total"]


class BadRequest(ValueError):
    """An argument of a usage query is invalid; the message says which and why."""


@dataclass
class Usage:
    total_cost: Decimal = Decimal(0)
    total_calls: int = 0
    total_input_tokens: int = 0
    total_cached_tokens: int = 0
    total_output_tokens: int = 0
    cache_hit_rate_sum: float = 0.0

    @property
    def avg_cache_hit_rate(self) -> float:
        return self.cache_hit_rate_sum / self.total_calls if self.total_calls else 0.0

    @classmethod
    def from_row(
        cls, cost: Any, calls: Any, inp: Any, cached: Any, out: Any, rate_sum: float
    ) -> Usage:
        """A usage row as ClickHouse returns it: the cost exact, the counts integers."""
        return cls(Decimal(cost), int(calls), int(inp), int(cached), int(out), rate_sum)

    def add(self, other: Usage) -> None:
        self.total_cost += other.total_cost
        self.total_calls += other.total_calls
        self.total_input_tokens += other.total_input_tokens
        self.total_cached_tokens += other.total_cached_tokens
        self.total_output_tokens += other.total_output_tokens
        self.cache_hit_rate_sum += other.cache_hit_rate_sum

    def as_json(self) -> dict[str, Any]:
        return {
            "total_cost": str(self.total_cost),
            "total_calls": self.total_calls,
            "total_input_tokens": self.total_input_tokens,
            "total_cached_tokens": self.total_cached_tokens,
            "total_output_tokens": self.total_output_tokens,
            "avg_cache_hit_rate": self.avg_cache_hit_rate,
        }


@dataclass
class UsageReport:
    organization_id: str
    start: datetime
    end: datetime
    granularity: Granularity
    totals: Usage
    days: dict[date, Usage] = field(default_factory=dict)
    route: str = "raw"
    rollup_days: tuple[date, ...] = ()
    raw_ranges: tuple[tuple[datetime, datetime], ...] = ()
    watermark: date | None = None

    def as_json(self) -> dict[str, Any]:
        """The shape shared by the CLI's JSON output and the HTTP API."""
        return {
            "organization_id": self.organization_id,
            "start": _iso(self.start),
            "end": _iso(self.end),
            "granularity": self.granularity,
            "totals": self.totals.as_json(),
            "days": [
                {"date": day.isoformat(), **usage.as_json()}
                for day, usage in sorted(self.days.items())
            ]
            if self.granularity == "day"
            else [],
            "route": self.route,
            "rollup_days": [day.isoformat() for day in self.rollup_days],
            "raw_ranges": [{"start": _iso(a), "end": _iso(b)} for a, b in self.raw_ranges],
            "watermark": self.watermark.isoformat() if self.watermark else None,
        }


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_bound(text: str) -> date | datetime:
    """YYYY-MM-DD (midnight UTC) or an ISO 8601 datetime with an offset."""
    try:
        if len(text) == 10:
            return date.fromisoformat(text)
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise BadRequest(f"{text!r} is neither YYYY-MM-DD nor an ISO 8601 datetime") from None
    if moment.tzinfo is None:
        raise BadRequest(f"{text!r} needs an offset, such as Z or +02:00")
    return moment


def normalize_bound(value: datetime | date, name: str) -> datetime:
    """A date is the start of that UTC day; a datetime must carry an offset. Bounds are
    rounded up to the millisecond, the raw log's precision, which keeps [start, end)."""
    if isinstance(value, datetime):
        if value.tzinfo is None or value.utcoffset() is None:
            raise BadRequest(f"{name} must carry a time zone offset (UTC is assumed nowhere)")
        moment = value.astimezone(UTC)
    elif isinstance(value, date):
        moment = routing.midnight(value)
    else:
        raise BadRequest(f"{name} must be a date or a datetime")
    micros = moment.microsecond
    if micros % 1000:
        moment += timedelta(microseconds=1000 - micros % 1000)
    return moment


def validate(
    organization_id: str, start: datetime | date, end: datetime | date, settings: QuerySettings
) -> tuple[datetime, datetime]:
    if not isinstance(organization_id, str) or not 1 <= len(organization_id) <= 128:
        raise BadRequest("organization_id must be 1 to 128 characters")
    if not _plain(organization_id):
        raise BadRequest("organization_id must not contain control characters")
    lo, hi = normalize_bound(start, "start"), normalize_bound(end, "end")
    if hi <= lo:
        raise BadRequest(f"end ({_iso(hi)}) must be after start ({_iso(lo)})")
    if hi - lo > timedelta(days=settings.max_range_days):
        raise BadRequest(f"the range is longer than {settings.max_range_days} days")
    if lo.year < 1970 or hi.year > 2299:
        raise BadRequest("the range must lie between 1970 and 2299")
    return lo, hi


class RunLogCache:
    """Aggregated days and their snapshots, read at most every ``ttl_s`` seconds.

    A stale copy can only err toward the raw log: a day aggregated since is taken as not
    aggregated, and an older snapshot makes the clean test stricter. Touched days, which
    can make a day dirty, are never cached."""

    def __init__(self, client: Client, ctx: SchemaContext, clock: Clock, ttl_s: float) -> None:
        self._client, self._ctx, self._clock, self._ttl_s = client, ctx, clock, ttl_s
        self._lock = threading.Lock()
        self._read_at: float | None = None
        self._snapshots: dict[date, int] = {}

    def snapshots(self) -> dict[date, int]:
        with self._lock:
            now = self._clock.monotonic()
            if self._read_at is None or now - self._read_at >= self._ttl_s:
                rows = self._client.query(sql.aggregated_days(self._ctx)).result_rows
                self._snapshots = {day: int(ms) for day, ms in rows}
                self._read_at = now
            return self._snapshots


class UsageQuery:
    """Answers usage queries; holds the run-log cache between requests."""

    def __init__(
        self,
        client: Client,
        ctx: SchemaContext,
        settings: QuerySettings | None = None,
        *,
        settle_s: float = 300.0,
        clock: Clock | None = None,
        cache_ttl_s: float = 5.0,
        parallel_client: Client | None = None,
    ) -> None:
        """``parallel_client``, a second handle on the same ClickHouse, lets the rollup
        and the touched days be read at the same time (chDB serializes one handle)."""
        self._client = client
        self._parallel = parallel_client
        self._pool = (
            ThreadPoolExecutor(1, thread_name_prefix="aiusage-query") if parallel_client else None
        )
        self._ctx = ctx
        self._settings = settings or QuerySettings()
        self._settle_ms = math.ceil(settle_s * 1000)
        self._runs = RunLogCache(client, ctx, clock or SystemClock(), cache_ttl_s)

    def org_usage(
        self,
        organization_id: str,
        start: datetime | date,
        end: datetime | date,
        granularity: Granularity = "day",
        route: Literal["auto", "raw"] = "auto",
    ) -> UsageReport:
        """Usage of ``organization_id`` over [start, end); ``route="raw"`` reads only the
        raw log (the reference the routed answer must equal)."""
        if granularity not in ("day", "total"):
            raise BadRequest("granularity must be 'day' or 'total'")
        lo, hi = validate(organization_id, start, end, self._settings)
        snapshots = self._runs.snapshots()
        watermark = max(snapshots) if snapshots else None
        threshold = self._settings.rollup_threshold_days
        first, stop = routing.whole_days(lo, hi)
        candidates = sorted(d for d in snapshots if first <= d < stop)
        days: dict[date, Usage] = {}
        if route == "raw" or not routing.is_long(lo, hi, threshold) or not candidates:
            plan = routing.plan(lo, hi, threshold, ())
        else:
            rollup, touched = self._read_rollup(organization_id, candidates[0], candidates[-1])
            clean = {d for d in candidates if touched.get(d, 0) < snapshots[d] - self._settle_ms}
            plan = routing.plan(lo, hi, threshold, clean)
            days = {d: usage for d, usage in rollup.items() if d in clean}
        if plan.raw_ranges:
            for day, usage in self._read_raw(organization_id, plan.raw_ranges).items():
                days.setdefault(day, Usage()).add(usage)
        totals = Usage()
        for usage in days.values():
            totals.add(usage)
        return UsageReport(
            organization_id=organization_id, start=lo, end=hi, granularity=granularity,
            totals=totals, days=days, route=plan.route, rollup_days=plan.rollup_days,
            raw_ranges=plan.raw_ranges, watermark=watermark,
        )  # fmt: skip

    def _read_rollup(
        self, organization_id: str, first: date, last: date
    ) -> tuple[dict[date, Usage], dict[date, int]]:
        """The rollup's rows and the touched times of [first, last]: both in one round
        trip, or side by side on two handles when a parallel client was given."""
        params = {"org": organization_id, "first": first, "stop": last + routing.DAY}
        rollup_sql, touched_sql = sql.rollup_part(self._ctx), sql.touched_part(self._ctx)
        if self._parallel is not None and self._pool is not None:
            parallel = self._parallel
            pending = self._pool.submit(
                lambda: parallel.query(touched_sql, parameters=params).result_rows
            )
            rows = [*self._client.query(rollup_sql, parameters=params).result_rows]
            rows += pending.result()
        else:
            rows = [
                *self._client.query(
                    f"{rollup_sql}\nUNION ALL\n{touched_sql}", parameters=params
                ).result_rows
            ]
        rollup: dict[date, Usage] = {}
        touched: dict[date, int] = {}
        for day, source, cost, calls, inp, cached, out, rate_sum in rows:
            if source == "touched":
                touched[day] = int(calls)
            else:
                rollup[day] = Usage.from_row(cost, calls, inp, cached, out, rate_sum)
        return rollup, touched

    def _read_raw(
        self, organization_id: str, ranges: tuple[tuple[datetime, datetime], ...]
    ) -> dict[date, Usage]:
        params: dict[str, Any] = {"org": organization_id}
        for i, (a, b) in enumerate(ranges):
            params[f"s{i}"] = _bound(a)
            params[f"e{i}"] = _bound(b)
        query = f"{sql.raw_part(self._ctx, ranges)}\n{sql.FINAL_SETTINGS}"
        return {
            day: Usage.from_row(*values)
            for day, _, *values in self._client.query(query, parameters=params).result_rows
        }


def get_org_usage(
    client: Client,
    ctx: SchemaContext,
    organization_id: str,
    start: datetime | date,
    end: datetime | date,
    granularity: Granularity = "day",
    *,
    settings: QuerySettings | None = None,
    settle_s: float = 300.0,
    route: Literal["auto", "raw"] = "auto",
) -> UsageReport:
    """Usage of ``organization_id`` over [start, end), from a fresh read of the run log.

    ``settle_s`` must be the aggregator's AIUSAGE_AGGREGATOR_INGEST_SETTLE_S: it is the
    same rule that decides which days are clean. Services keep a UsageQuery instead."""
    query = UsageQuery(client, ctx, settings, settle_s=settle_s, cache_ttl_s=0.0)
    return query.org_usage(organization_id, start, end, granularity, route)


def _bound(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]
