"""The query layer's SQL. Every value is a bound parameter; identifiers come from SchemaContext."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from aiusage.schema import ddl
from aiusage.schema.ddl import CACHE_HIT_RATE, USAGE_COLUMNS, SchemaContext


def aggregated_days(ctx: SchemaContext) -> str:
    """Every aggregated day with its snapshot (ms), and nothing else.

    A run's rows are (day, version) with status running then done: the done row is
    there whether or not the two have been merged yet, so no FINAL is needed."""
    return (
        f"SELECT day, toInt64(max(version)) FROM {ctx.table(ddl.AGGREGATION_RUNS)} "
        "WHERE status = 'done' GROUP BY day"
    )


def touched_part(ctx: SchemaContext) -> str:
    """When the organization's days in [first, stop) last received rows, shaped like a
    usage row (source 'touched', the time in ms as total_calls) to share a round trip."""
    return (
        "SELECT date, 'touched' AS source, toDecimal128(0, 9), "
        "toUInt64(toUnixTimestamp64Milli(last_ingested_at)), 0, 0, 0, 0.0\n"
        f"FROM {ctx.table(ddl.TOUCHED_DAYS)} FINAL\n"
        "WHERE organization_id = {org:String} AND date >= {first:Date} AND date < {stop:Date}"
    )


def rollup_part(ctx: SchemaContext) -> str:
    """The rollup's rows for the organization in [first, stop), deduplicated by FINAL
    (within one organization's primary-key range, it reads a handful of granules)."""
    return (
        f"SELECT date, 'rollup' AS source, {', '.join(USAGE_COLUMNS)}\n"
        f"FROM {ctx.table(ddl.DAILY_AGGREGATES)} FINAL\n"
        "WHERE organization_id = {org:String} AND date >= {first:Date} AND date < {stop:Date}"
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
