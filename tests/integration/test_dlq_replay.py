"""aiusage dlq replay: dead letters back to the topic, filtered, without a loop."""

from __future__ import annotations

import json

from clickhouse_connect.driver.client import Client

from aiusage.producer import UsageProducer
from aiusage.settings import ClickHouseSettings, KafkaSettings
from consumer.replay import ReplayFilter, replay
from tests.fakes import event_payload
from tests.pipeline import (
    ConsumerThread,
    caught_up,
    end_offsets,
    fast_consumer_settings,
    raw_row_count,
    wait_for,
)

PARTITIONS = 3


def _ingest_until_caught_up(
    kafka: KafkaSettings, clickhouse: ClickHouseSettings, client: Client, max_bytes: int
) -> None:
    worker = ConsumerThread(
        kafka, clickhouse, client=client, settings=fast_consumer_settings(max_event_bytes=max_bytes)
    ).start()
    wait_for(lambda: caught_up(kafka, PARTITIONS), what="the consumer to catch up")
    assert worker.join() == 0


def _total(offsets: dict[int, int]) -> int:
    return sum(offsets.values())


def test_replay_filters_republishes_unchanged_and_never_loops(
    kafka_settings: KafkaSettings, migrated: Client, clickhouse_settings: ClickHouseSettings
) -> None:
    big = [event_payload(notes="x" * 2000) for _ in range(5)]
    with UsageProducer(kafka_settings) as producer:
        for payload in big:
            producer.send_raw(payload, b"org-1", None)
        for index in range(3):
            producer.send_raw(b"{broken " + str(index).encode(), b"org-2", None)
    db = clickhouse_settings.database_name
    _ingest_until_caught_up(kafka_settings, clickhouse_settings, migrated, max_bytes=1024)
    assert raw_row_count(migrated, db) == 0
    topic_before = _total(end_offsets(kafka_settings, kafka_settings.topic, PARTITIONS))
    assert _total(end_offsets(kafka_settings, kafka_settings.dlq_topic, PARTITIONS)) == 8

    dry = replay(kafka_settings, ReplayFilter(frozenset({"oversized"})), dry_run=True)
    assert (dry.scanned, dry.replayed, dict(dry.by_kind)) == (8, 5, {"oversized": 5})
    assert _total(end_offsets(kafka_settings, kafka_settings.topic, PARTITIONS)) == topic_before

    done = replay(kafka_settings, ReplayFilter())
    assert (done.scanned, done.replayed) == (8, 8)
    assert _total(end_offsets(kafka_settings, kafka_settings.topic, PARTITIONS)) == (
        topic_before + 8
    )
    # With the limit raised, the oversized events are stored; the broken ones are
    # dead-lettered a second time.
    _ingest_until_caught_up(kafka_settings, clickhouse_settings, migrated, max_bytes=64 * 1024)
    assert raw_row_count(migrated, db) == 5
    assert _total(end_offsets(kafka_settings, kafka_settings.dlq_topic, PARTITIONS)) == 11
    stored = migrated.query(f"SELECT event_id FROM `{db}`.ai_usage_log").result_rows
    assert {str(row[0]) for row in stored} == {json.loads(p)["event_id"] for p in big}

    # A replay reads up to the end as it was when it began: it terminates even though
    # what it publishes comes back to the DLQ.
    again = replay(kafka_settings, ReplayFilter(frozenset({"not_json"})))
    assert (again.scanned, again.replayed) == (11, 6)
