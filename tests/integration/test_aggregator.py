"""The aggregator against real ClickHouse: exact rollups, idempotency, catch-up, late data."""

from __future__ import annotations

import threading
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from clickhouse_connect.driver.client import Client

from aggregator.daemon import Daemon
from aggregator.runner import Aggregator
from aggregator.settings import AggregatorSettings
from aiusage.clickhouse import connect
from aiusage.loadgen import LoadGenerator, Workload
from aiusage.schema import context_for
from aiusage.settings import ClickHouseSettings
from consumer.processing import Limits, process_message
from consumer.writer import ClickHouseRowWriter
from tests.fakes import FakeClock

END = datetime(2026, 3, 11, 0, 0, tzinfo=UTC)  # the workload covers 2026-03-01..10
LIMITS = Limits(1 << 20, timedelta(days=3650))


def _ingest(client: Client, database: str, workload: Workload, token: str) -> dict[str, Any]:
    """Write a generated workload straight into the raw log, the consumer's way."""
    generator = LoadGenerator(workload)
    rows = [
        process_message(m.payload, "t", 0, offset, LIMITS, END)
        for offset, m in enumerate(generator)
        if m.kind in ("valid", "duplicate")
    ]
    ClickHouseRowWriter(client, database).write(rows, token)
    return generator.expected()


def _rollup(client: Client, database: str) -> dict[tuple[str, str], dict[str, Any]]:
    rows = client.query(
        "SELECT organization_id, toString(date), total_cost, total_calls, total_input_tokens, "
        "total_cached_tokens, total_output_tokens, avg_cache_hit_rate, cache_hit_rate_sum "
        f"FROM `{database}`.ai_usage_daily_aggregates FINAL"
    ).result_rows
    return {
        (org, day): {
            "cost": cost, "calls": calls, "input_tokens": inp, "cached_tokens": cached,
            "output_tokens": out, "avg": avg, "cache_hit_rate_sum": rate_sum,
        }
        for org, day, cost, calls, inp, cached, out, avg, rate_sum in rows
    }  # fmt: skip


def _assert_rollup_matches(
    rollup: dict[Any, Any], expected: dict[str, Any], days: set[str]
) -> None:
    want = {
        (org, day): values
        for org, by_day in expected["totals"].items()
        for day, values in by_day.items()
        if day in days
    }
    assert set(rollup) == set(want)
    for key, values in want.items():
        got = rollup[key]
        assert got["cost"] == Decimal(values["cost"]), key
        for name in ("calls", "input_tokens", "cached_tokens", "output_tokens"):
            assert got[name] == values[name], (key, name)
        assert abs(got["cache_hit_rate_sum"] - values["cache_hit_rate_sum"]) < 1e-9
        assert abs(got["avg"] - values["cache_hit_rate_sum"] / values["calls"]) < 1e-12


@pytest.fixture
def aggregator(migrated: Client, clickhouse_settings: ClickHouseSettings) -> Aggregator:
    clock = FakeClock(END.timestamp() + 3600)  # 2026-03-11 01:00 UTC
    settings = AggregatorSettings(ingest_settle_s=0)
    return Aggregator(migrated, context_for(clickhouse_settings), settings, clock)


def _workload(**overrides: Any) -> Workload:
    defaults: dict[str, Any] = {
        "events": 4_000, "organizations": 6, "days": 10, "seed": 3,
        "duplicate_fraction": 0.05, "end": END,
    }  # fmt: skip
    return Workload(**{**defaults, **overrides})


def test_one_day_is_rolled_up_exactly_and_sparsely(
    aggregator: Aggregator, migrated: Client, clickhouse_settings: ClickHouseSettings
) -> None:
    db = clickhouse_settings.database_name
    expected = _ingest(migrated, db, _workload(), "a")
    # The resent duplicates are separate rows until a merge: the rollup counts them once.
    result = aggregator.aggregate_day(date(2026, 3, 5))
    rollup = _rollup(migrated, db)
    _assert_rollup_matches(rollup, expected, {"2026-03-05"})
    assert result.rows == len(rollup)
    assert result.rows == sum(1 for days in expected["totals"].values() if "2026-03-05" in days)


def test_ten_runs_and_two_concurrent_runs_leave_the_same_rollup(
    aggregator: Aggregator, migrated: Client, clickhouse_settings: ClickHouseSettings
) -> None:
    db = clickhouse_settings.database_name
    expected = _ingest(migrated, db, _workload(), "a")
    day = date(2026, 3, 7)
    aggregator.aggregate_day(day)
    once = _rollup(migrated, db)
    for _ in range(9):
        aggregator.aggregate_day(day)
    assert _rollup(migrated, db) == once

    ctx = context_for(clickhouse_settings)
    errors: list[BaseException] = []

    def other_process() -> None:
        client = connect(clickhouse_settings)
        try:
            Aggregator(client, ctx, AggregatorSettings(), FakeClock()).aggregate_day(day)
        except BaseException as err:  # asserted below
            errors.append(err)
        finally:
            client.close()

    threads = [threading.Thread(target=other_process) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []
    assert _rollup(migrated, db) == once
    _assert_rollup_matches(once, expected, {"2026-03-07"})


def test_a_run_that_crashed_part_way_leaves_no_wrong_rollup(
    aggregator: Aggregator, migrated: Client, clickhouse_settings: ClickHouseSettings
) -> None:
    db = clickhouse_settings.database_name
    ctx = context_for(clickhouse_settings)
    expected = _ingest(migrated, db, _workload(), "a")
    day = date(2026, 3, 4)
    # A crash after part of a first run's INSERT: two organizations' rows, status running.
    from aggregator import sql

    partial = sql.day_aggregate_select(ctx) + "\nORDER BY organization_id LIMIT 2"
    migrated.command(
        f"INSERT INTO `{db}`.ai_usage_daily_aggregates ({', '.join(sql.ROLLUP_COLUMNS)}) "
        + partial,
        parameters={"day": day, "version": 1},
    )
    migrated.insert(
        "ai_usage_aggregation_runs",
        [[day, 1, "running", datetime(2026, 3, 11, tzinfo=UTC), None, 0, "", "crashed"]],
        column_names=["day", "version", "status", "started_at", "finished_at", "rows",
                      "error", "runner"],
        database=db,
    )  # fmt: skip
    # The rows it left are each a complete organization's day, never a half-sum...
    for key, values in _rollup(migrated, db).items():
        assert values["calls"] == expected["totals"][key[0]][key[1]]["calls"]
    # ...and the day is not done, so the next run does it and the rollup is whole.
    assert day in aggregator.pending_days(date(2026, 3, 11))
    aggregator.catch_up()
    _assert_rollup_matches(
        {k: v for k, v in _rollup(migrated, db).items() if k[1] == "2026-03-04"},
        expected,
        {"2026-03-04"},
    )


def test_first_start_backfills_from_the_earliest_raw_day_within_the_bound(
    migrated: Client, clickhouse_settings: ClickHouseSettings
) -> None:
    db = clickhouse_settings.database_name
    expected = _ingest(migrated, db, _workload(), "a")
    ctx = context_for(clickhouse_settings)
    clock = FakeClock(END.timestamp() + 3600)
    bounded = Aggregator(migrated, ctx, AggregatorSettings(backfill_max_days=4), clock)
    assert bounded.pending_days(date(2026, 3, 11)) == [date(2026, 3, d) for d in range(7, 11)]
    full = Aggregator(migrated, ctx, AggregatorSettings(ingest_settle_s=0), clock)
    report = full.catch_up()
    assert report.ok
    assert [r.day for r in report.days] == [date(2026, 3, d) for d in range(1, 11)]
    _assert_rollup_matches(
        _rollup(migrated, db), expected, {f"2026-03-{d:02d}" for d in range(1, 11)}
    )
    assert full.pending_days(date(2026, 3, 11)) == []


def test_a_daemon_down_for_ten_days_fills_all_ten(
    migrated: Client, clickhouse_settings: ClickHouseSettings
) -> None:
    db = clickhouse_settings.database_name
    ctx = context_for(clickhouse_settings)
    _ingest(migrated, db, _workload(days=1, end=datetime(2026, 2, 20, tzinfo=UTC)), "old")
    clock = FakeClock(datetime(2026, 2, 20, 1, 0, tzinfo=UTC).timestamp())
    aggregator = Aggregator(migrated, ctx, AggregatorSettings(ingest_settle_s=0), clock)
    assert [r.day for r in aggregator.catch_up().days] == [date(2026, 2, 19)]
    expected = _ingest(migrated, db, _workload(), "new")  # 2026-03-01..10 arrive later
    clock.now = datetime(2026, 3, 11, 1, 0, tzinfo=UTC).timestamp()
    days = [r.day for r in aggregator.catch_up().days]
    assert days == [date(2026, 2, 20) + timedelta(days=n) for n in range(19)]
    _assert_rollup_matches(
        {k: v for k, v in _rollup(migrated, db).items() if k[1] >= "2026-03-01"},
        expected,
        {f"2026-03-{d:02d}" for d in range(1, 11)},
    )


def test_late_data_makes_its_day_dirty_until_the_next_run(
    aggregator: Aggregator, migrated: Client, clickhouse_settings: ClickHouseSettings
) -> None:
    db = clickhouse_settings.database_name
    _ingest(migrated, db, _workload(), "a")
    aggregator.catch_up()
    assert aggregator.pending_days(date(2026, 3, 11)) == []
    late_workload = _workload(events=50, days=1, seed=99, end=datetime(2026, 3, 3, 12, tzinfo=UTC))
    late = _ingest(migrated, db, late_workload, "late")
    late_days = {date.fromisoformat(d) for days in late["totals"].values() for d in days}
    assert aggregator.dirty_days(date(2026, 3, 1)) == sorted(late_days)
    assert aggregator.pending_days(date(2026, 3, 11)) == sorted(late_days)
    report = aggregator.catch_up()
    assert [r.day for r in report.days] == sorted(late_days)
    assert aggregator.dirty_days(date(2026, 3, 1)) == []
    calls = migrated.query(
        f"SELECT sum(total_calls) FROM `{db}`.ai_usage_daily_aggregates FINAL"
    ).result_rows[0][0]
    raw = migrated.query(f"SELECT count() FROM `{db}`.ai_usage_log FINAL").result_rows[0][0]
    assert calls == raw


def test_rows_ingested_just_before_a_snapshot_keep_their_day_dirty(
    migrated: Client, clickhouse_settings: ClickHouseSettings
) -> None:
    db = clickhouse_settings.database_name
    ctx = context_for(clickhouse_settings)
    _ingest(migrated, db, _workload(), "a")
    clock = FakeClock(END.timestamp() + 3600)
    settling = Aggregator(migrated, ctx, AggregatorSettings(ingest_settle_s=300), clock)
    settling.aggregate_day(date(2026, 3, 2))
    # The rows were ingested seconds before the snapshot: an insert still becoming
    # visible could be missing from it, so the day stays dirty.
    assert settling.dirty_days(date(2026, 3, 1)) == [date(2026, 3, 2)]
    settled = Aggregator(migrated, ctx, AggregatorSettings(ingest_settle_s=0), clock)
    assert settled.dirty_days(date(2026, 3, 1)) == []


def test_the_daemon_catches_up_then_runs_on_schedule_and_stops_between_runs(
    migrated: Client, clickhouse_settings: ClickHouseSettings
) -> None:
    db = clickhouse_settings.database_name
    _ingest(migrated, db, _workload(), "a")
    clock = FakeClock(datetime(2026, 3, 11, 0, 30, tzinfo=UTC).timestamp())
    aggregator = Aggregator(
        migrated, context_for(clickhouse_settings), AggregatorSettings(ingest_settle_s=0), clock
    )
    stop = threading.Event()
    fired: list[datetime] = []
    original = aggregator.catch_up

    def recording_catch_up(stop_event: threading.Event | None = None) -> Any:
        fired.append(datetime.fromtimestamp(clock.now, UTC))
        return original(stop_event)

    aggregator.catch_up = recording_catch_up  # type: ignore[method-assign]

    def wait(seconds: float) -> bool:
        if len(fired) >= 3:
            return True  # SIGTERM arrives between runs: the daemon returns at once
        clock.advance(seconds)
        return False

    daemon = Daemon(aggregator, "0 1 * * *", clock, stop, wait)
    daemon.run()
    assert fired == [
        datetime(2026, 3, 11, 0, 30, tzinfo=UTC),  # the start-up catch-up
        datetime(2026, 3, 11, 1, 0, tzinfo=UTC),
        datetime(2026, 3, 12, 1, 0, tzinfo=UTC),
    ]
    assert daemon.health()[0] is True
    done = migrated.query(
        f"SELECT uniqExact(day) FROM `{db}`.ai_usage_aggregation_runs FINAL WHERE status = 'done'"
    ).result_rows[0][0]
    assert done == 11  # 2026-03-01..10, then 2026-03-11 at the next night's run


def test_a_failed_run_is_unhealthy_and_recorded(
    migrated: Client, clickhouse_settings: ClickHouseSettings
) -> None:
    db = clickhouse_settings.database_name
    _ingest(migrated, db, _workload(), "a")
    ctx = context_for(clickhouse_settings)
    clock = FakeClock(END.timestamp() + 3600)
    aggregator = Aggregator(migrated, ctx, AggregatorSettings(ingest_settle_s=0), clock)
    migrated.command(f"RENAME TABLE `{db}`.ai_usage_daily_aggregates TO `{db}`.moved_away")
    stop = threading.Event()
    daemon = Daemon(aggregator, "0 1 * * *", clock, stop, lambda seconds: True)
    daemon.run()
    ok, details = daemon.health()
    assert ok is False
    assert "aggregating 2026-03-01 failed" in details["last_error"]
    status = migrated.query(
        f"SELECT status, error FROM `{db}`.ai_usage_aggregation_runs FINAL"
    ).result_rows
    assert [s for s, _ in status] == ["failed"]
    assert "UNKNOWN_TABLE" in status[0][1] or "doesn't exist" in status[0][1]


def test_stop_is_honoured_between_two_days(
    aggregator: Aggregator, migrated: Client, clickhouse_settings: ClickHouseSettings
) -> None:
    _ingest(migrated, clickhouse_settings.database_name, _workload(), "a")
    stop = threading.Event()
    report = aggregator.run(
        [date(2026, 3, d) for d in range(1, 11)], progress=lambda result: stop.set(), stop=stop
    )
    assert [r.day for r in report.days] == [date(2026, 3, 1)]
