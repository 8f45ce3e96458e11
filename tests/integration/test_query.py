"""Routed answers equal raw answers, over random data and random ranges.

The data has what makes routing hard: days aggregated and days not, late events for
aggregated days, resent duplicates not merged away, partial days at both edges.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from clickhouse_connect.driver.client import Client
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from aggregator.runner import Aggregator
from aggregator.settings import AggregatorSettings
from aiusage.schema import context_for
from aiusage.settings import ClickHouseSettings
from query.api import BadRequest, UsageReport, get_org_usage
from tests.fakes import FakeClock
from tests.integration.conftest import DATA_END, DATA_START, Dataset
from tests.integration.test_aggregator import _ingest, _workload

ORGS = [f"org-{i:04d}" for i in range(1, 7)] + ["org-none"]


def _assert_equal(routed: UsageReport, raw: UsageReport) -> None:
    a, b = routed.totals, raw.totals
    assert a.total_cost == b.total_cost
    assert isinstance(a.total_cost, Decimal)
    assert (a.total_calls, a.total_input_tokens, a.total_cached_tokens, a.total_output_tokens) == (
        b.total_calls, b.total_input_tokens, b.total_cached_tokens, b.total_output_tokens,
    )  # fmt: skip
    assert abs(a.avg_cache_hit_rate - b.avg_cache_hit_rate) <= 1e-12
    assert set(routed.days) == set(raw.days)
    for day, usage in routed.days.items():
        other = raw.days[day]
        assert usage.total_cost == other.total_cost, day
        assert usage.total_calls == other.total_calls, day
        assert abs(usage.avg_cache_hit_rate - other.avg_cache_hit_rate) <= 1e-12, day


moments = st.integers(
    min_value=int((DATA_START - timedelta(days=3)).timestamp() * 1000),
    max_value=int((DATA_END + timedelta(days=3)).timestamp() * 1000),
).map(lambda ms: datetime.fromtimestamp(ms / 1000, UTC))


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    org=st.sampled_from(ORGS),
    bounds=st.tuples(moments, moments).filter(lambda b: b[0] != b[1]).map(sorted),
    whole_days=st.booleans(),
    granularity=st.sampled_from(["day", "total"]),
)
def test_the_routed_answer_equals_the_raw_answer(
    dataset: Dataset, org: str, bounds: list[datetime], whole_days: bool, granularity: str
) -> None:
    start, end = bounds
    if whole_days:
        start = datetime.combine(start.date(), datetime.min.time(), UTC)
        end = datetime.combine(end.date(), datetime.min.time(), UTC) + timedelta(days=1)
    kwargs = {"granularity": granularity, "settle_s": 0.0}
    routed = get_org_usage(dataset.client, dataset.ctx, org, start, end, **kwargs)  # type: ignore[arg-type]
    raw = get_org_usage(dataset.client, dataset.ctx, org, start, end, route="raw", **kwargs)  # type: ignore[arg-type]
    _assert_equal(routed, raw)
    assert raw.route == "raw"
    event(f"route: {routed.route}")


def test_a_long_range_is_hybrid_and_explains_itself(dataset: Dataset) -> None:
    report = get_org_usage(
        dataset.client,
        dataset.ctx,
        "org-0001",
        datetime(2026, 2, 12, 6, tzinfo=UTC),
        date(2026, 3, 11),
        settle_s=0.0,
    )
    assert report.route == "hybrid"
    late_days = {date(2026, 2, 18), date(2026, 2, 19), date(2026, 2, 20)}
    not_aggregated = {date(2026, 3, d) for d in range(7, 11)}
    rollup = set(report.rollup_days)
    assert rollup, "some days come from the rollup"
    assert not rollup & not_aggregated, "days not aggregated are read raw"
    assert not rollup & late_days, "days with late rows pending are read raw"
    assert date(2026, 2, 12) not in rollup, "the partial first day is read raw"
    assert report.raw_ranges[0] == (
        datetime(2026, 2, 12, 6, tzinfo=UTC),
        datetime(2026, 2, 13, tzinfo=UTC),
    )
    assert report.watermark == date(2026, 3, 6)
    shape = report.as_json()
    assert shape["route"] == "hybrid"
    assert isinstance(shape["totals"]["total_cost"], str)
    assert {"total_cost", "total_calls", "avg_cache_hit_rate"} <= set(shape["days"][0])
    _assert_equal(report, get_org_usage(
        dataset.client, dataset.ctx, "org-0001", datetime(2026, 2, 12, 6, tzinfo=UTC),
        date(2026, 3, 11), settle_s=0.0, route="raw",
    ))  # fmt: skip


def test_after_the_next_run_the_late_days_come_from_the_rollup(
    migrated: Client, clickhouse_settings: ClickHouseSettings
) -> None:
    db = clickhouse_settings.database_name
    ctx = context_for(clickhouse_settings)
    _ingest(migrated, db, _workload(events=2_000, days=20, seed=8, end=DATA_END), "base")
    clock = FakeClock((DATA_END + timedelta(hours=1)).timestamp())
    aggregator = Aggregator(migrated, ctx, AggregatorSettings(ingest_settle_s=0), clock)
    aggregator.catch_up()
    late = _workload(events=100, days=2, seed=9, end=DATA_END - timedelta(days=5))
    _ingest(migrated, db, late, "late")
    before = get_org_usage(migrated, ctx, "org-0001", date(2026, 2, 20), DATA_END, settle_s=0.0)
    aggregator.catch_up()
    after = get_org_usage(migrated, ctx, "org-0001", date(2026, 2, 20), DATA_END, settle_s=0.0)
    assert len(after.rollup_days) > len(before.rollup_days)
    assert after.route == "rollup"
    _assert_equal(after, before)


def test_unknown_organization_and_bad_arguments(dataset: Dataset) -> None:
    empty = get_org_usage(dataset.client, dataset.ctx, "nobody", date(2026, 2, 1), date(2026, 3, 1))
    assert empty.totals.total_calls == 0 and empty.totals.total_cost == 0
    assert empty.days == {}
    with pytest.raises(BadRequest, match="granularity"):
        get_org_usage(dataset.client, dataset.ctx, "o", date(2026, 2, 1), date(2026, 3, 1), "week")  # type: ignore[arg-type]


def _view_days(
    dataset: Dataset, org: str, start: datetime, end: datetime
) -> dict[date, tuple[Any, ...]]:
    rows = dataset.client.query(
        "SELECT date, source, total_cost, total_calls, total_input_tokens, total_cached_tokens, "
        "total_output_tokens, avg_cache_hit_rate "
        f"FROM `{dataset.ctx.database}`.v_ai_usage_org_daily("
        "org = {org:String}, start_ts = {s:String}, end_ts = {e:String}, threshold_days = 7, "
        "settle_ms = 0)",
        parameters={
            "org": org,
            "s": start.strftime("%Y-%m-%d %H:%M:%S.%f")[:-3],
            "e": end.strftime("%Y-%m-%d %H:%M:%S.%f")[:-3],
        },
    ).result_rows
    return {row[0]: row[1:] for row in rows}


@pytest.mark.parametrize(
    ("org", "start", "end"),
    [
        ("org-0001", datetime(2026, 2, 12, 6, tzinfo=UTC), datetime(2026, 3, 11, tzinfo=UTC)),
        ("org-0002", datetime(2026, 2, 10, tzinfo=UTC), datetime(2026, 3, 1, tzinfo=UTC)),
        ("org-0003", datetime(2026, 2, 25, 13, tzinfo=UTC), datetime(2026, 3, 2, 1, tzinfo=UTC)),
        ("org-0006", datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 4, 1, tzinfo=UTC)),
    ],
)
def test_the_bi_view_gives_the_api_numbers_by_the_same_route(
    dataset: Dataset, org: str, start: datetime, end: datetime
) -> None:
    report = get_org_usage(dataset.client, dataset.ctx, org, start, end, settle_s=0.0)
    view = _view_days(dataset, org, start, end)
    assert set(view) == set(report.days)
    for day, usage in report.days.items():
        source, cost, calls, inp, cached, out, avg = view[day]
        assert (cost, calls, inp, cached, out) == (
            usage.total_cost, usage.total_calls, usage.total_input_tokens,
            usage.total_cached_tokens, usage.total_output_tokens,
        )  # fmt: skip
        assert abs(avg - usage.avg_cache_hit_rate) <= 1e-12
        assert source == ("rollup" if day in report.rollup_days else "raw")


def test_the_deduplicated_views(dataset: Dataset) -> None:
    db = dataset.ctx.database
    q = dataset.client.query
    assert (
        q(f"SELECT count() FROM `{db}`.v_ai_usage_log").result_rows
        == q(f"SELECT count() FROM `{db}`.ai_usage_log FINAL").result_rows
    )
    assert (
        q(f"SELECT count() FROM `{db}`.v_ai_usage_log").result_rows[0][0]
        < q(f"SELECT count() FROM `{db}`.ai_usage_log").result_rows[0][0]
    ), "the dataset has unmerged duplicates"
    daily = q(
        f"SELECT date, organization_id, total_cost, total_calls, avg_cache_hit_rate "
        f"FROM `{db}`.v_ai_usage_daily ORDER BY date, organization_id"
    ).result_rows
    final = q(
        f"SELECT date, organization_id, total_cost, total_calls, avg_cache_hit_rate "
        f"FROM `{db}`.ai_usage_daily_aggregates FINAL ORDER BY date, organization_id"
    ).result_rows
    assert daily == final and daily
