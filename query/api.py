"""``get_org_usage``: one organization's usage over [start, end), exact and explained.

The answer always equals the raw log's answer: the rollup serves only whole UTC days
that are aggregated and clean for the organization; the rest is read from the raw log
(with FINAL). The report says which days came from where, and the rollup watermark.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any, Literal

from clickhouse_connect.driver.client import Client

from aiusage.events import _plain
from aiusage.schema.ddl import SchemaContext
from query import routing, sql
from query.settings import QuerySettings

Granularity = Literal["day", "total"]
EPOCH_DAY = date(1970, 1, 1)


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


def clean_days(
    client: Client,
    ctx: SchemaContext,
    organization_id: str,
    first: date,
    stop: date,
    settle_s: float,
) -> tuple[set[date], date | None]:
    """The aggregated days in [first, stop) that are clean for the organization, and the
    rollup watermark (the latest aggregated day)."""
    rows = client.query(
        sql.day_status(ctx),
        parameters={"org": organization_id, "first": first, "stop": stop},
    ).result_rows
    settle_ms = math.ceil(settle_s * 1000)
    clean: set[date] = set()
    watermark: date | None = None
    for kind, day, snapshot, last_ms in rows:
        if kind == 1:
            watermark = day if day > EPOCH_DAY else None
        elif int(last_ms or 0) < int(snapshot) - settle_ms:
            clean.add(day)
    return clean, watermark


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
    """Usage of ``organization_id`` over [start, end).

    ``settle_s`` must be the aggregator's AIUSAGE_AGGREGATOR_INGEST_SETTLE_S: it is the
    same rule that decides which days are clean. ``route="raw"`` reads only the raw log
    (the reference the routed answer must equal).
    """
    settings = settings or QuerySettings()
    if granularity not in ("day", "total"):
        raise BadRequest("granularity must be 'day' or 'total'")
    lo, hi = validate(organization_id, start, end, settings)
    if route == "raw" or not routing.is_long(lo, hi, settings.rollup_threshold_days):
        plan = routing.plan(lo, hi, settings.rollup_threshold_days, ())
        found = client.query(sql.watermark(ctx)).result_rows[0]
        watermark = found[0] if found[1] else None
    else:
        first, stop = routing.whole_days(lo, hi)
        clean, watermark = clean_days(client, ctx, organization_id, first, stop, settle_s)
        plan = routing.plan(lo, hi, settings.rollup_threshold_days, clean)
    days = _read(client, ctx, organization_id, plan)
    totals = Usage()
    for usage in days.values():
        totals.add(usage)
    return UsageReport(
        organization_id=organization_id,
        start=lo,
        end=hi,
        granularity=granularity,
        totals=totals,
        days=days,
        route=plan.route,
        rollup_days=plan.rollup_days,
        raw_ranges=plan.raw_ranges,
        watermark=watermark,
    )


def _read(
    client: Client, ctx: SchemaContext, organization_id: str, plan: routing.Plan
) -> dict[date, Usage]:
    parts: list[str] = []
    params: dict[str, Any] = {"org": organization_id}
    if plan.rollup_days:
        parts.append(sql.rollup_part(ctx))
        params["days"] = list(plan.rollup_days)
    if plan.raw_ranges:
        parts.append(sql.raw_part(ctx, plan.raw_ranges))
        for i, (a, b) in enumerate(plan.raw_ranges):
            params[f"s{i}"] = _bound(a)
            params[f"e{i}"] = _bound(b)
    query = "\nUNION ALL\n".join(parts) + "\n" + sql.FINAL_SETTINGS
    days: dict[date, Usage] = {}
    for day, _source, cost, calls, inp, cached, out, rate_sum in client.query(
        query, parameters=params
    ).result_rows:
        usage = days.setdefault(day, Usage())
        usage.add(Usage(Decimal(cost), int(calls), int(inp), int(cached), int(out), rate_sum))
    return days


def _bound(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]
