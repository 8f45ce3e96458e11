"""The schema applied to a real ClickHouse engine (chDB or a server)."""

from __future__ import annotations

import re
import threading
import uuid
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from clickhouse_connect.driver.client import Client

from aiusage.errors import SchemaError
from aiusage.schema import SchemaContext, context_for, migrate
from aiusage.schema.ddl import (
    AGGREGATION_RUNS,
    DAILY_AGGREGATES,
    MIGRATIONS,
    RAW_LOG,
    TOUCHED_DAYS,
)
from aiusage.schema.migrations import MIGRATIONS as MIGRATIONS_LIST
from aiusage.settings import ClickHouseSettings

ALL_VERSIONS = tuple(m.version for m in MIGRATIONS_LIST)


def _create_statements(client: Client, database: str) -> dict[str, str]:
    rows = client.query(
        "SELECT name, create_table_query FROM system.tables WHERE database = {db:String}",
        parameters={"db": database},
    ).result_rows
    return dict(rows)


def _explain(client: Client, sql: str, parameters: dict[str, object]) -> str:
    rows = client.query(f"EXPLAIN indexes = 1 {sql}", parameters=parameters).result_rows
    return "\n".join(row[0] for row in rows)


def _primary_key_granules(plan: str) -> tuple[int, int]:
    section = plan[plan.index("PrimaryKey") :]
    found = re.search(r"Granules: (\d+)/(\d+)", section)
    assert found, plan
    return int(found.group(1)), int(found.group(2))


def test_fresh_database_gets_every_version_and_the_tables(
    clickhouse: Client, clickhouse_settings: ClickHouseSettings
) -> None:
    ctx = context_for(clickhouse_settings)
    result = migrate(clickhouse, ctx)
    assert result.applied == ALL_VERSIONS
    assert result.version == ALL_VERSIONS[-1]
    tables = _create_statements(clickhouse, ctx.database)
    assert {RAW_LOG, DAILY_AGGREGATES, MIGRATIONS, AGGREGATION_RUNS, TOUCHED_DAYS} <= set(tables)
    assert "ReplacingMergeTree" in tables[RAW_LOG]
    assert "ReplacingMergeTree(version)" in tables[DAILY_AGGREGATES]
    recorded = clickhouse.query(
        f"SELECT version, name FROM {ctx.table(MIGRATIONS)} FINAL ORDER BY version"
    ).result_rows
    assert recorded == [(m.version, m.name) for m in MIGRATIONS_LIST]


def test_migrate_twice_changes_nothing(
    clickhouse: Client, clickhouse_settings: ClickHouseSettings
) -> None:
    ctx = context_for(clickhouse_settings)
    migrate(clickhouse, ctx)
    before = _create_statements(clickhouse, ctx.database)
    again = migrate(clickhouse, ctx)
    assert again.applied == ()
    assert not again.ttl_changed
    assert _create_statements(clickhouse, ctx.database) == before
    versions = clickhouse.query(
        f"SELECT version FROM {ctx.table(MIGRATIONS)} FINAL ORDER BY version"
    ).result_rows
    assert versions == [(v,) for v in ALL_VERSIONS]


def test_concurrent_migrations_leave_one_schema(
    clickhouse: Client, clickhouse_settings: ClickHouseSettings
) -> None:
    ctx = context_for(clickhouse_settings)
    errors: list[BaseException] = []
    barrier = threading.Barrier(3)

    def run() -> None:
        from aiusage.clickhouse import connect

        client = connect(clickhouse_settings)
        try:
            barrier.wait()
            migrate(client, ctx)
        except BaseException as err:  # collected and asserted below
            errors.append(err)
        finally:
            client.close()

    threads = [threading.Thread(target=run) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    versions = clickhouse.query(
        f"SELECT version FROM {ctx.table(MIGRATIONS)} FINAL ORDER BY version"
    ).result_rows
    assert versions == [(v,) for v in ALL_VERSIONS]


def test_a_newer_database_is_refused(
    clickhouse: Client, clickhouse_settings: ClickHouseSettings
) -> None:
    ctx = context_for(clickhouse_settings)
    migrate(clickhouse, ctx)
    clickhouse.insert(MIGRATIONS, [[99, "from the future"]], ["version", "name"], ctx.database)
    with pytest.raises(SchemaError, match="version 99, newer than this aiusage knows"):
        migrate(clickhouse, ctx)


def test_retention_ttl_follows_the_setting(
    clickhouse: Client, clickhouse_settings: ClickHouseSettings
) -> None:
    ctx = context_for(clickhouse_settings)
    migrate(clickhouse, ctx)
    assert "TTL" not in _create_statements(clickhouse, ctx.database)[RAW_LOG]

    with_ttl = SchemaContext(database=ctx.database, log_ttl_days=30)
    assert migrate(clickhouse, with_ttl).ttl_changed
    assert (
        "TTL toDateTime(timestamp) + toIntervalDay(30)"
        in (_create_statements(clickhouse, ctx.database)[RAW_LOG])
    )
    assert not migrate(clickhouse, with_ttl).ttl_changed

    assert migrate(clickhouse, ctx).ttl_changed
    assert "TTL" not in _create_statements(clickhouse, ctx.database)[RAW_LOG]


def test_raw_log_collapses_a_repeated_event_id_and_keeps_cost_exact(
    clickhouse: Client, clickhouse_settings: ClickHouseSettings
) -> None:
    ctx = context_for(clickhouse_settings)
    migrate(clickhouse, ctx)
    columns = [
        "event_id", "timestamp", "organization_id", "model", "input_tokens",
        "cached_tokens", "output_tokens", "cost_usd", "kafka_topic", "kafka_partition",
        "kafka_offset",
    ]  # fmt: skip
    when = datetime(2026, 3, 1, 12, 0, 0, 123000, tzinfo=UTC)
    repeated = uuid.uuid4()
    rows = [
        [repeated, when, "org-a", "m", 100, 40, 10, Decimal("0.000000001"), "t", 0, 1],
        [uuid.uuid4(), when, "org-a", "m", 10, 0, 1, Decimal("0.1"), "t", 0, 2],
        [uuid.uuid4(), when, "org-a", "m", 10, 0, 1, Decimal("0.2"), "t", 0, 3],
    ]
    clickhouse.insert(RAW_LOG, rows, column_names=columns, database=ctx.database)
    # A redelivery of the first event, in a later insert (a separate part).
    clickhouse.insert(RAW_LOG, rows[:1], column_names=columns, database=ctx.database)

    table = ctx.table(RAW_LOG)
    assert clickhouse.query(f"SELECT count() FROM {table}").result_rows == [(4,)]
    count, cost = clickhouse.query(f"SELECT count(), sum(cost_usd) FROM {table} FINAL").result_rows[
        0
    ]
    assert count == 3
    assert cost == Decimal("0.300000001")
    assert isinstance(cost, Decimal)
    stored = clickhouse.query(
        f"SELECT timestamp, ingested_at > now64(3) - 60 FROM {table} WHERE event_id = {{e:UUID}}"
        " LIMIT 1",
        parameters={"e": repeated},
    ).result_rows[0]
    assert stored[0].replace(tzinfo=UTC) == when
    assert stored[1] == 1


def test_raw_log_columns_and_types(
    clickhouse: Client, clickhouse_settings: ClickHouseSettings
) -> None:
    ctx = context_for(clickhouse_settings)
    migrate(clickhouse, ctx)
    types = dict(
        clickhouse.query(
            "SELECT name, type FROM system.columns WHERE database = {db:String} "
            "AND table = {t:String}",
            parameters={"db": ctx.database, "t": RAW_LOG},
        ).result_rows
    )
    assert types["event_id"] == "UUID"
    assert types["timestamp"] == "DateTime64(3, 'UTC')"
    assert types["cost_usd"].startswith("Decimal(")
    assert types["ingested_at"] == "DateTime64(3, 'UTC')"
    for column in ("organization_id", "model", "provider", "feature", "user_id"):
        assert "String" in types[column]
    for column in ("input_tokens", "cached_tokens", "output_tokens"):
        assert types[column] == "UInt64"
    assert {"kafka_topic", "kafka_partition", "kafka_offset"} <= set(types)


def test_an_organizations_time_range_is_a_primary_key_range(
    clickhouse: Client, clickhouse_settings: ClickHouseSettings
) -> None:
    ctx = context_for(clickhouse_settings)
    migrate(clickhouse, ctx)
    clickhouse.command(
        f"INSERT INTO {ctx.table(RAW_LOG)} (event_id, timestamp, organization_id, model, "
        "cost_usd) SELECT generateUUIDv4(), toDateTime64('2026-03-01 00:00:00', 3, 'UTC') "
        "+ toIntervalSecond(number % 864000), concat('org-', toString(number % 50)), 'm', "
        "toDecimal64(number % 7, 9) FROM numbers(200000)"
    )
    plan = _explain(
        clickhouse,
        f"SELECT sum(cost_usd) FROM {ctx.table(RAW_LOG)} WHERE organization_id = {{o:String}} "
        "AND timestamp >= {a:DateTime64(3, 'UTC')} AND timestamp < {b:DateTime64(3, 'UTC')}",
        {"o": "org-7", "a": "2026-03-02 00:00:00", "b": "2026-03-03 00:00:00"},
    )
    assert re.search(r"Keys:\s+organization_id\s+timestamp", plan), plan
    selected, total = _primary_key_granules(plan)
    assert selected < total / 10


def _fill_daily(client: Client, ctx: SchemaContext) -> None:
    # 2,000 organizations over 30 days of one month: several granules per part.
    client.command(
        f"INSERT INTO {ctx.table(DAILY_AGGREGATES)} (date, organization_id, total_cost, "
        "total_calls, version) SELECT toDate('2026-04-01') + (number % 30), "
        "concat('org-', toString(intDiv(number, 30))), toDecimal128(number, 9), 1, 1 "
        "FROM numbers(60000)"
    )


def test_by_org_date_is_the_primary_key(
    clickhouse: Client, clickhouse_settings: ClickHouseSettings
) -> None:
    ctx = context_for(clickhouse_settings)
    migrate(clickhouse, ctx)
    _fill_daily(clickhouse, ctx)
    plan = _explain(
        clickhouse,
        f"SELECT sum(total_cost) FROM {ctx.table(DAILY_AGGREGATES)} FINAL "
        "WHERE organization_id = {o:String} AND date >= {a:Date} AND date < {b:Date}",
        {"o": "org-1234", "a": "2026-04-03", "b": "2026-04-20"},
    )
    assert re.search(r"Keys:\s+organization_id\s+date", plan), plan
    selected, total = _primary_key_granules(plan)
    assert selected < total


def test_by_date_is_served_by_the_projection(
    clickhouse: Client, clickhouse_settings: ClickHouseSettings
) -> None:
    ctx = context_for(clickhouse_settings)
    migrate(clickhouse, ctx)
    _fill_daily(clickhouse, ctx)
    plan = _explain(
        clickhouse,
        f"SELECT organization_id, sum(total_cost) FROM {ctx.table(DAILY_AGGREGATES)} "
        "WHERE date = {d:Date} GROUP BY organization_id",
        {"d": "2026-04-05"},
    )
    assert "ReadFromMergeTree (by_date)" in plan, plan
    assert re.search(r"Keys:\s+date\n", plan), plan
    selected, total = _primary_key_granules(plan)
    assert selected < total
