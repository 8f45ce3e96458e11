"""``aiusage serve``: consumer, aggregator and HTTP API in one process, one stop."""

from __future__ import annotations

import json
import socket
import threading
import urllib.request
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from clickhouse_connect.driver.client import Client

from aggregator.settings import AggregatorSettings
from aiusage.loadgen import Workload
from aiusage.serve import ServeConfig, serve
from aiusage.settings import ClickHouseSettings, KafkaSettings, MetricsSettings
from query.settings import QuerySettings
from tests.pipeline import expected_messages, fast_consumer_settings, produce, wait_for


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _get(url: str) -> dict:  # type: ignore[type-arg]
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.loads(response.read())  # type: ignore[no-any-return]


def test_one_process_ingests_aggregates_and_answers_then_stops_on_one_signal(
    kafka_settings: KafkaSettings, migrated: Client, clickhouse_settings: ClickHouseSettings
) -> None:
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    expected = produce(
        kafka_settings,
        Workload(3_000, 4, 20, seed=12, invalid_fraction=0.01, duplicate_fraction=0.02,
                 end=today),
    )  # fmt: skip
    api_port, metrics_port = _free_port(), _free_port()
    config = ServeConfig(
        kafka=kafka_settings,
        clickhouse=clickhouse_settings,
        consumer=fast_consumer_settings(),
        aggregator=AggregatorSettings(ingest_settle_s=0),
        query=QuerySettings(port=api_port),
        metrics=MetricsSettings(port=metrics_port, host="127.0.0.1"),
    )
    stop, catch_up_now = threading.Event(), threading.Event()
    result: list[int] = []
    runner = threading.Thread(target=lambda: result.append(serve(config, stop, catch_up_now)))
    runner.start()
    try:
        db = clickhouse_settings.database_name
        wait_for(
            lambda: (
                migrated.query(f"SELECT count() FROM `{db}`.ai_usage_log FINAL").result_rows[0][0]
                == expected["unique_events"]
            ),
            what="every event ingested",
        )
        catch_up_now.set()
        wait_for(
            lambda: (
                migrated.query(
                    f"SELECT uniqExact(day) FROM `{db}`.ai_usage_aggregation_runs "
                    "WHERE status = 'done'"
                ).result_rows[0][0]
                >= 20
            ),
            what="the requested catch-up",
        )
        start = (today - timedelta(days=20)).date().isoformat()
        body = _get(
            f"http://127.0.0.1:{api_port}/v1/organizations/org-0001/usage"
            f"?start={start}&end={today.date().isoformat()}&granularity=total"
        )
        assert body["route"] == "rollup"
        want = sum(Decimal(v["cost"]) for v in expected["totals"]["org-0001"].values())
        assert Decimal(body["totals"]["total_cost"]) == want
        metrics = urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics").read()
        assert b"aiusage_consumer_events_consumed_total" in metrics
        assert b"aiusage_aggregator_rows_written_total" in metrics
        assert _get(f"http://127.0.0.1:{metrics_port}/healthz")["ok"] is True
        consumed = expected_messages(expected)
        assert consumed > expected["unique_events"]
    finally:
        stop.set()
        runner.join(60)
    assert not runner.is_alive()
    assert result == [0]
