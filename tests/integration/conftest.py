"""Shared data for the query tests: one dataset per module, built once."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from clickhouse_connect.driver.client import Client

from aggregator.runner import Aggregator
from aggregator.settings import AggregatorSettings
from aiusage.clickhouse import connect
from aiusage.schema import SchemaContext, context_for, migrate
from aiusage.settings import ClickHouseSettings
from tests.fakes import FakeClock

DATA_START = datetime(2026, 2, 10, tzinfo=UTC)
DATA_END = datetime(2026, 3, 11, tzinfo=UTC)  # 29 days of data


@dataclass
class Dataset:
    client: Client
    ctx: SchemaContext
    dsn: str


@pytest.fixture(scope="module")
def dataset(clickhouse_dsn: str) -> Iterator[Dataset]:
    settings = ClickHouseSettings(dsn=clickhouse_dsn, database="test_query_property")
    client = connect(settings)
    ctx = context_for(settings)
    client.command(f"DROP DATABASE IF EXISTS `{ctx.database}` SYNC")
    migrate(client, ctx)
    db = ctx.database
    from tests.integration.test_aggregator import _ingest, _workload

    base = _workload(events=6_000, days=29, seed=5, end=DATA_END)
    _ingest(client, db, base, "base")
    # Resent duplicates in separate parts: the raw log holds them until a merge.
    _ingest(client, db, _workload(events=1_500, days=29, seed=5, end=DATA_END), "resent")
    # Aggregate everything but the last four days (as if the nightly run were behind).
    clock = FakeClock((DATA_END - timedelta(days=4) + timedelta(hours=1)).timestamp())
    Aggregator(client, ctx, AggregatorSettings(ingest_settle_s=0), clock).catch_up()
    # Then late events for days already aggregated.
    late_end = datetime(2026, 2, 20, 12, tzinfo=UTC)
    _ingest(client, db, _workload(events=300, days=3, seed=77, end=late_end), "late")
    yield Dataset(client, ctx, clickhouse_dsn)
    client.command(f"DROP DATABASE IF EXISTS `{ctx.database}` SYNC")
    client.close()
