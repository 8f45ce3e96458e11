"""The query layer's SQL. Every value is a bound parameter; identifiers come from SchemaContext."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from aggregator.sql import CACHE_HIT_RATE
from aiusage.schema import ddl
from aiusage.schema.ddl import SchemaContext

USAGE_COLUMNS = (
    "total_cost",
    "total_calls",
    "total_input_tokens",
    "total_cached_tokens",
    "total_output_tokens",
    "cache_hit_rate_sum",
)


def day_status(ctx: SchemaContext) -> str:
    """For the organization and [first, stop): each aggregated day's snapshot and when the
    organization's day last received rows (kind 0), then the rollup watermark (kind 1)."""
    return f"""SELECT 0 AS kind, r.day AS day, r.snapshot AS snapshot, t.last_ms AS last_ms
FROM (
    SELECT day, max(version) AS snapshot
    FROM {ctx.table(ddl.AGGREGATION_RUNS)} FINAL
    WHERE status = 'done' AND day >= {{first:Date}} AND day < {{stop:Date}}
    GROUP BY day
) AS r
LEFT JOIN (
    SELECT date, toUnixTimestamp64Milli(max(last_ingested_at)) AS last_ms
    FROM {ctx.table(ddl.TOUCHED_DAYS)}
    WHERE organization_id = {{org:String}} AND date >= {{first:Date}} AND date < {{stop:Date}}
    GROUP BY date
) AS t ON r.day = t.date
UNION ALL
SELECT 1, max(day), 0, 0 FROM {ctx.table(ddl.AGGREGATION_RUNS)} WHERE status = 'done'"""


def watermark(ctx: SchemaContext) -> str:
    return (
        f"SELECT max(day), count() > 0 FROM {ctx.table(ddl.AGGREGATION_RUNS)} WHERE status = 'done'"
    )


def rollup_part(ctx: SchemaContext) -> str:
    values = ", ".join(f"argMax({c}, version)" for c in USAGE_COLUMNS)
    return (
        f"SELECT date, 'rollup' AS source, {values}\n"
        f"FROM {ctx.table(ddl.DAILY_AGGREGATES)}\n"
        "WHERE organization_id = {org:String} AND date IN {days:Array(Date)}\n"
        "GROUP BY date"
    )


def raw_part(ctx: SchemaContext, ranges: Sequence[tuple[datetime, datetime]]) -> str:
    """The raw log's per-day totals over ``ranges``, bound as {s0}/{e0}, {s1}/{e1}..."""
    moment = "DateTime64(3, 'UTC')"
    within = " OR ".join(
        f"(timestamp >= {{s{i}:{moment}}} AND timestamp < {{e{i}:{moment}}})"
        for i in range(len(ranges))
    )
    return (
        "SELECT toDate(timestamp) AS date, 'raw' AS source, sum(cost_usd), count(), "
        "sum(input_tokens), sum(cached_tokens), sum(output_tokens), "
        f"sum({CACHE_HIT_RATE})\n"
        f"FROM {ctx.table(ddl.RAW_LOG)} FINAL\n"
        f"WHERE organization_id = {{org:String}} AND ({within})\n"
        "GROUP BY date"
    )


FINAL_SETTINGS = "SETTINGS do_not_merge_across_partitions_select_final = 1"
