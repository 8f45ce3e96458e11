"""The aggregator's SQL. Every value is a bound parameter; identifiers come from SchemaContext.

One day's rollup is computed inside ClickHouse (INSERT ... SELECT ... GROUP BY), from the
raw log read with FINAL, so that a duplicate not yet merged away counts once.
"""

from __future__ import annotations

from aiusage.schema import ddl
from aiusage.schema.ddl import CACHE_HIT_RATE, SchemaContext

ROLLUP_COLUMNS = (
    "date",
    "organization_id",
    "total_cost",
    "total_calls",
    "total_input_tokens",
    "total_cached_tokens",
    "total_output_tokens",
    "avg_cache_hit_rate",
    "cache_hit_rate_sum",
    "version",
    "aggregated_at",
)

_DAY_RANGE = (
    "timestamp >= toDateTime64({day:Date}, 3, 'UTC') "
    "AND timestamp < toDateTime64({day:Date} + 1, 3, 'UTC')"
)
_FINAL_SETTINGS = "SETTINGS do_not_merge_across_partitions_select_final = 1"


def day_aggregate_select(ctx: SchemaContext) -> str:
    """Per-organization totals of one UTC day ({day:Date}), versioned {version:UInt64}."""
    return f"""SELECT
    toDate(timestamp) AS date,
    organization_id,
    sum(cost_usd) AS total_cost,
    count() AS total_calls,
    sum(input_tokens) AS total_input_tokens,
    sum(cached_tokens) AS total_cached_tokens,
    sum(output_tokens) AS total_output_tokens,
    avg({CACHE_HIT_RATE}) AS avg_cache_hit_rate,
    sum({CACHE_HIT_RATE}) AS cache_hit_rate_sum,
    {{version:UInt64}} AS version,
    fromUnixTimestamp64Milli(toInt64({{version:UInt64}}), 'UTC') AS aggregated_at
FROM {ctx.table(ddl.RAW_LOG)} FINAL
WHERE {_DAY_RANGE}
GROUP BY date, organization_id"""


def aggregate_day(ctx: SchemaContext) -> str:
    return (
        f"INSERT INTO {ctx.table(ddl.DAILY_AGGREGATES)} ({', '.join(ROLLUP_COLUMNS)})\n"
        f"{day_aggregate_select(ctx)}\n{_FINAL_SETTINGS}"
    )


def rows_of_version(ctx: SchemaContext) -> str:
    return (
        f"SELECT count() FROM {ctx.table(ddl.DAILY_AGGREGATES)} "
        "WHERE date = {day:Date} AND version = {version:UInt64}"
    )


def server_now_ms() -> str:
    return "SELECT toUnixTimestamp64Milli(now64(3))"


def earliest_raw_day(ctx: SchemaContext) -> str:
    return f"SELECT min(toDate(timestamp)), count() > 0 FROM {ctx.table(ddl.RAW_LOG)}"


def done_days(ctx: SchemaContext) -> str:
    """Each aggregated day with the snapshot (version, in ms) of its latest finished run."""
    return (
        f"SELECT day, max(version) FROM {ctx.table(ddl.AGGREGATION_RUNS)} FINAL "
        "WHERE status = 'done' AND day >= {since:Date} GROUP BY day"
    )


def dirty_days(ctx: SchemaContext) -> str:
    """Aggregated days that received rows at or after (snapshot - settle), with how many
    organizations are affected."""
    return f"""SELECT t.date, uniqExact(t.organization_id)
FROM {ctx.table(ddl.TOUCHED_DAYS)} AS t FINAL
INNER JOIN (
    SELECT day, max(version) AS snapshot
    FROM {ctx.table(ddl.AGGREGATION_RUNS)} FINAL
    WHERE status = 'done' AND day >= {{since:Date}}
    GROUP BY day
) AS r ON t.date = r.day
WHERE t.date >= {{since:Date}}
  AND toUnixTimestamp64Milli(t.last_ingested_at) >= r.snapshot - {{settle_ms:UInt64}}
GROUP BY t.date"""
