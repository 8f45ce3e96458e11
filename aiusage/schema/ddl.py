"""Pure DDL generation. Nothing here talks to ClickHouse.

Every statement is idempotent (``IF NOT EXISTS``), so that applying a migration
twice, or from two processes at once, leaves the same schema.
"""

from __future__ import annotations

from dataclasses import dataclass

from aiusage.dsn import validate_identifier

RAW_LOG = "ai_usage_log"
DAILY_AGGREGATES = "ai_usage_daily_aggregates"
MIGRATIONS = "aiusage_schema_migrations"
AGGREGATION_RUNS = "ai_usage_aggregation_runs"
TOUCHED_DAYS = "ai_usage_touched_days"
TOUCHED_DAYS_MV = "ai_usage_touched_days_mv"
VIEW_DAILY = "v_ai_usage_daily"
VIEW_LOG = "v_ai_usage_log"
VIEW_ORG_DAILY = "v_ai_usage_org_daily"

# Per-event cost: up to 999,999,999.999999999 USD with nine decimal places.
COST_TYPE = "Decimal(18, 9)"
# Sums of many events.
TOTAL_COST_TYPE = "Decimal(38, 9)"
# How many recent inserts' deduplication tokens the raw log remembers.
INSERT_DEDUP_WINDOW = 1000


@dataclass(frozen=True)
class SchemaContext:
    """What the DDL depends on: the database, an optional cluster and the raw log's TTL."""

    database: str
    cluster: str | None = None
    log_ttl_days: int | None = None

    def __post_init__(self) -> None:
        validate_identifier(self.database, what="database name")
        if self.log_ttl_days is not None and self.log_ttl_days < 1:
            raise ValueError("log_ttl_days must be at least 1")

    def table(self, name: str) -> str:
        """A fully qualified, quoted table name."""
        validate_identifier(name, what="table name")
        return f"`{self.database}`.`{name}`"

    @property
    def on_cluster(self) -> str:
        return f" ON CLUSTER `{self.cluster}`" if self.cluster else ""

    @property
    def dedup_window_setting(self) -> str:
        """The table setting that keeps recent insert tokens, so a retried insert is dropped."""
        if self.cluster:
            return "replicated_deduplication_window"
        return "non_replicated_deduplication_window"

    def engine(self, family: str, table: str, *args: str) -> str:
        """``family`` (for example ReplacingMergeTree), made Replicated on a cluster."""
        if not self.cluster:
            return f"{family}({', '.join(args)})"
        path = f"'/clickhouse/tables/{{shard}}/{self.database}/{table}'"
        replica = "'{replica}'"
        return f"Replicated{family}({', '.join([path, replica, *args])})"


def create_database(ctx: SchemaContext) -> str:
    return f"CREATE DATABASE IF NOT EXISTS `{ctx.database}`{ctx.on_cluster}"


def create_migrations_table(ctx: SchemaContext) -> str:
    return f"""CREATE TABLE IF NOT EXISTS {ctx.table(MIGRATIONS)}{ctx.on_cluster}
(
    version UInt32,
    name String,
    applied_at DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = {ctx.engine("ReplacingMergeTree", MIGRATIONS, "applied_at")}
ORDER BY version"""


def log_ttl_expression(days: int) -> str:
    """The raw log's TTL, written the way ClickHouse prints it back in ``engine_full``."""
    return f"toDateTime(timestamp) + toIntervalDay({int(days)})"


def create_raw_log(ctx: SchemaContext) -> str:
    """The raw log: one row per model call, deduplicated on ``event_id``.

    The sorting key starts with the organization and its time, so one organization's
    time range is a primary-key range; ``event_id`` ends it, so that a redelivered or
    resent event (same id, same organization and time) collapses into one row.
    """
    ttl = f"\nTTL {log_ttl_expression(ctx.log_ttl_days)}" if ctx.log_ttl_days else ""
    # The raw log's key ends with event_id so that any repeat collapses; the insert
    # deduplication window drops a retried batch before it even makes a part.
    return f"""CREATE TABLE IF NOT EXISTS {ctx.table(RAW_LOG)}{ctx.on_cluster}
(
    event_id UUID,
    timestamp DateTime64(3, 'UTC'),
    organization_id String,
    model LowCardinality(String),
    provider LowCardinality(String),
    feature LowCardinality(String),
    user_id String,
    input_tokens UInt64,
    cached_tokens UInt64,
    output_tokens UInt64,
    cost_usd {COST_TYPE},
    kafka_topic LowCardinality(String),
    kafka_partition Int32,
    kafka_offset Int64,
    ingested_at DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = {ctx.engine("ReplacingMergeTree", RAW_LOG)}
PARTITION BY toYYYYMM(timestamp)
PRIMARY KEY (organization_id, timestamp)
ORDER BY (organization_id, timestamp, event_id){ttl}
SETTINGS {ctx.dedup_window_setting} = {INSERT_DEDUP_WINDOW}"""


def create_daily_aggregates(ctx: SchemaContext) -> str:
    """Per-organization daily rollups (the request's aiUsageDailyAggregates).

    Partitioned by year: the table holds one row per organization and day, so monthly
    partitions would only multiply the parts a one-organization read must open.

    ``by_org_date`` is the primary key (organization_id, date); ``by_date`` is a
    projection sorted by date. ``cache_hit_rate_sum`` (the sum of the per-call rates)
    lets a range of days be merged exactly: sum(cache_hit_rate_sum) / sum(total_calls).
    The highest ``version`` of a (organization_id, date) wins.
    """
    return f"""CREATE TABLE IF NOT EXISTS {ctx.table(DAILY_AGGREGATES)}{ctx.on_cluster}
(
    date Date,
    organization_id String,
    total_cost {TOTAL_COST_TYPE},
    total_calls UInt64,
    total_input_tokens UInt64,
    total_cached_tokens UInt64,
    total_output_tokens UInt64,
    avg_cache_hit_rate Float64,
    cache_hit_rate_sum Float64,
    version UInt64,
    aggregated_at DateTime64(3, 'UTC') DEFAULT now64(3),
    PROJECTION by_date (SELECT * ORDER BY date)
)
ENGINE = {ctx.engine("ReplacingMergeTree", DAILY_AGGREGATES, "version")}
PARTITION BY toYear(date)
ORDER BY (organization_id, date)
SETTINGS deduplicate_merge_projection_mode = 'rebuild'"""


def set_log_ttl(ctx: SchemaContext) -> str:
    """Bring the raw log's TTL in line with ``ctx.log_ttl_days``."""
    if ctx.log_ttl_days is None:
        return f"ALTER TABLE {ctx.table(RAW_LOG)}{ctx.on_cluster} REMOVE TTL"
    return (
        f"ALTER TABLE {ctx.table(RAW_LOG)}{ctx.on_cluster} "
        f"MODIFY TTL {log_ttl_expression(ctx.log_ttl_days)}"
    )


def create_aggregation_runs(ctx: SchemaContext) -> str:
    """The aggregator's run log: one row per (day, version), its last status wins.

    ``version`` is the run's snapshot time on the ClickHouse server, in milliseconds:
    the rows a run writes into the rollup carry the same version.
    """
    return f"""CREATE TABLE IF NOT EXISTS {ctx.table(AGGREGATION_RUNS)}{ctx.on_cluster}
(
    day Date,
    version UInt64,
    status Enum8('running' = 1, 'done' = 2, 'failed' = 3),
    started_at DateTime64(3, 'UTC'),
    finished_at Nullable(DateTime64(3, 'UTC')),
    rows UInt64,
    error String,
    runner String,
    updated_at DateTime64(3, 'UTC') DEFAULT now64(3)
)
ENGINE = {ctx.engine("ReplacingMergeTree", AGGREGATION_RUNS, "updated_at")}
ORDER BY (day, version)"""


def create_touched_days(ctx: SchemaContext) -> str:
    """When each (organization, day) last received raw rows, kept by a materialized view.

    A rollup day is stale for an organization when rows for it were ingested after
    (or shortly before) the day's last aggregation snapshot.
    """
    return f"""CREATE TABLE IF NOT EXISTS {ctx.table(TOUCHED_DAYS)}{ctx.on_cluster}
(
    date Date,
    organization_id String,
    last_ingested_at DateTime64(3, 'UTC')
)
ENGINE = {ctx.engine("ReplacingMergeTree", TOUCHED_DAYS, "last_ingested_at")}
PARTITION BY toYear(date)
ORDER BY (organization_id, date)"""


def create_touched_days_view(ctx: SchemaContext) -> str:
    return f"""CREATE MATERIALIZED VIEW IF NOT EXISTS {ctx.table(TOUCHED_DAYS_MV)}{ctx.on_cluster}
TO {ctx.table(TOUCHED_DAYS)}
AS SELECT
    toDate(timestamp) AS date,
    organization_id,
    max(ingested_at) AS last_ingested_at
FROM {ctx.table(RAW_LOG)}
GROUP BY date, organization_id"""


# The additive usage columns of a rollup row; averages derive from them.
USAGE_COLUMNS = (
    "total_cost",
    "total_calls",
    "total_input_tokens",
    "total_cached_tokens",
    "total_output_tokens",
    "cache_hit_rate_sum",
)
# A call's cache hit rate, as every query computes it.
CACHE_HIT_RATE = "if(input_tokens = 0, 0, cached_tokens / input_tokens)"


def create_view_daily(ctx: SchemaContext) -> str:
    """The deduplicated rollup with the request's columns: the latest version wins."""
    columns = ", ".join(("date", "organization_id", *USAGE_COLUMNS, "avg_cache_hit_rate"))
    return f"""CREATE VIEW IF NOT EXISTS {ctx.table(VIEW_DAILY)}{ctx.on_cluster} AS
SELECT {columns}
FROM {ctx.table(DAILY_AGGREGATES)} FINAL"""


def create_view_log(ctx: SchemaContext) -> str:
    """The deduplicated raw log: one row per event."""
    return f"""CREATE VIEW IF NOT EXISTS {ctx.table(VIEW_LOG)}{ctx.on_cluster} AS
SELECT * EXCEPT (kafka_topic, kafka_partition, kafka_offset)
FROM {ctx.table(RAW_LOG)} FINAL"""


def create_view_org_daily(ctx: SchemaContext) -> str:
    """The query layer's routing as a parameterized view, for BI tools.

    SELECT * FROM v_ai_usage_org_daily(org = 'org-a', start_ts = '2026-03-01 00:00:00',
        end_ts = '2026-04-01 00:00:00', threshold_days = 7, settle_ms = 300000)

    One row per day with usage, and where it came from. threshold_days and settle_ms
    must be AIUSAGE_QUERY_ROLLUP_THRESHOLD_DAYS and AIUSAGE_AGGREGATOR_INGEST_SETTLE_S
    (in ms) for the numbers to match the API's to the last digit.
    """
    lo = "{start_ts:DateTime64(3, 'UTC')}"
    hi = "{end_ts:DateTime64(3, 'UTC')}"
    first = f"if(toDateTime64(toDate({lo}), 3, 'UTC') = {lo}, toDate({lo}), toDate({lo}) + 1)"
    long_range = f"dateDiff('millisecond', {lo}, {hi}) > {{threshold_days:Float64}} * 86400000"
    clean = f"""SELECT r.day
        FROM (
            SELECT day, max(version) AS snapshot FROM {ctx.table(AGGREGATION_RUNS)} FINAL
            WHERE status = 'done' GROUP BY day
        ) AS r
        LEFT JOIN (
            SELECT date, toUnixTimestamp64Milli(max(last_ingested_at)) AS last_ms
            FROM {ctx.table(TOUCHED_DAYS)} WHERE organization_id = {{org:String}} GROUP BY date
        ) AS t ON r.day = t.date
        WHERE toInt64(t.last_ms) < toInt64(r.snapshot) - {{settle_ms:UInt64}}"""
    served = f"({long_range}) AND day_ >= {first} AND day_ < toDate({hi}) AND day_ IN ({clean})"
    rollup_values = ",\n    ".join(f"argMax({c}, version) AS {c}" for c in USAGE_COLUMNS)
    return f"""CREATE VIEW IF NOT EXISTS {ctx.table(VIEW_ORG_DAILY)}{ctx.on_cluster} AS
SELECT date, source, {", ".join(USAGE_COLUMNS)},
    if(total_calls = 0, 0, cache_hit_rate_sum / total_calls) AS avg_cache_hit_rate
FROM (
    SELECT date, 'rollup' AS source,
    {rollup_values}
    FROM {ctx.table(DAILY_AGGREGATES)}
    WHERE organization_id = {{org:String}} AND {served.replace("day_", "date")}
    GROUP BY date
    UNION ALL
    SELECT toDate(timestamp) AS date, 'raw' AS source,
        sum(cost_usd) AS total_cost, count() AS total_calls,
        sum(input_tokens) AS total_input_tokens, sum(cached_tokens) AS total_cached_tokens,
        sum(output_tokens) AS total_output_tokens, sum({CACHE_HIT_RATE}) AS cache_hit_rate_sum
    FROM {ctx.table(RAW_LOG)} FINAL
    WHERE organization_id = {{org:String}} AND timestamp >= {lo} AND timestamp < {hi}
      AND NOT ({served.replace("day_", "toDate(timestamp)")})
    GROUP BY date
)"""
