from __future__ import annotations

import re

import pytest

from aiusage.schema import SchemaContext, ddl, plan
from aiusage.schema.migrations import MIGRATIONS, Migration, check_order


def test_single_node_ddl_uses_plain_engines_and_no_cluster() -> None:
    statements = plan(SchemaContext(database="metering"))
    text = "\n".join(statements)
    assert "ON CLUSTER" not in text
    assert "Replicated" not in text
    assert "ENGINE = ReplacingMergeTree()" in ddl.create_raw_log(SchemaContext("metering"))
    assert "ENGINE = ReplacingMergeTree(version)" in ddl.create_daily_aggregates(
        SchemaContext("metering")
    )
    assert all("IF NOT EXISTS" in statement for statement in statements)


def test_cluster_ddl_runs_on_cluster_with_replicated_engines() -> None:
    ctx = SchemaContext(database="metering", cluster="prod-eu")
    statements = plan(ctx)
    assert all(" ON CLUSTER `prod-eu`" in statement for statement in statements)
    raw = ddl.create_raw_log(ctx)
    assert (
        "ENGINE = ReplicatedReplacingMergeTree("
        "'/clickhouse/tables/{shard}/metering/ai_usage_log', '{replica}')" in raw
    )
    daily = ddl.create_daily_aggregates(ctx)
    assert (
        "ENGINE = ReplicatedReplacingMergeTree("
        "'/clickhouse/tables/{shard}/metering/ai_usage_daily_aggregates', '{replica}', version)"
        in daily
    )
    assert raw.endswith("SETTINGS replicated_deduplication_window = 1000")
    migrations = ddl.create_migrations_table(ctx)
    assert "ReplicatedReplacingMergeTree(" in migrations
    assert ddl.set_log_ttl(ctx).startswith(
        "ALTER TABLE `metering`.`ai_usage_log` ON CLUSTER `prod-eu` "
    )


def test_raw_log_keys_make_an_organizations_time_range_a_primary_key_range() -> None:
    raw = ddl.create_raw_log(SchemaContext("m"))
    assert "PRIMARY KEY (organization_id, timestamp)" in raw
    assert "ORDER BY (organization_id, timestamp, event_id)" in raw
    assert "PARTITION BY toYYYYMM(timestamp)" in raw
    assert re.search(r"cost_usd Decimal\(\d+, 9\)", raw)
    assert "TTL" not in raw
    assert raw.endswith("SETTINGS non_replicated_deduplication_window = 1000")


def test_raw_log_ttl_comes_from_the_setting() -> None:
    raw = ddl.create_raw_log(SchemaContext("m", log_ttl_days=400))
    assert "\nTTL toDateTime(timestamp) + toIntervalDay(400)\n" in raw
    assert ddl.set_log_ttl(SchemaContext("m")).endswith("REMOVE TTL")
    assert ddl.set_log_ttl(SchemaContext("m", log_ttl_days=7)).endswith(
        "MODIFY TTL toDateTime(timestamp) + toIntervalDay(7)"
    )


def test_daily_aggregates_map_the_requested_indexes() -> None:
    daily = ddl.create_daily_aggregates(SchemaContext("m"))
    assert "ORDER BY (organization_id, date)" in daily  # by_org_date
    assert "PROJECTION by_date (SELECT * ORDER BY date)" in daily  # by_date
    assert "deduplicate_merge_projection_mode = 'rebuild'" in daily
    for column in (
        "date Date",
        "organization_id String",
        "total_cost Decimal(38, 9)",
        "total_calls UInt64",
        "total_input_tokens UInt64",
        "total_cached_tokens UInt64",
        "total_output_tokens UInt64",
        "avg_cache_hit_rate Float64",
        "cache_hit_rate_sum Float64",
        "version UInt64",
        "aggregated_at DateTime64(3, 'UTC')",
    ):
        assert f"    {column}" in daily


@pytest.mark.parametrize("database", ["bad-name", "1x", "a`b"])
def test_context_rejects_unsafe_database_names(database: str) -> None:
    with pytest.raises(ValueError):
        SchemaContext(database=database)


def test_migration_versions_are_contiguous() -> None:
    check_order(MIGRATIONS)
    with pytest.raises(ValueError):
        check_order([Migration(1, "a", lambda c: []), Migration(3, "b", lambda c: [])])
