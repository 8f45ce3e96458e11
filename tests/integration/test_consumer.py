"""The consumer against the real broker and ClickHouse: exact totals, dead letters,
rebalances and injected write failures."""

from __future__ import annotations

import json
from collections.abc import Sequence

import pytest
from clickhouse_connect.driver.client import Client
from confluent_kafka import Consumer

from aiusage.loadgen import Workload
from aiusage.producer import UsageProducer
from aiusage.settings import ClickHouseSettings, KafkaSettings
from consumer import dlq
from consumer.processing import Row
from consumer.service import EXIT_DLQ_LIMIT, EXIT_WRITE_FAILED, ConsumerStopped
from consumer.writer import ClickHouseRowWriter, WriteFailed
from tests.fakes import event_payload
from tests.pipeline import (
    FIXED_END,
    ConsumerThread,
    assert_totals_match,
    caught_up,
    committed_offsets,
    end_offsets,
    expected_messages,
    fast_consumer_settings,
    produce,
    raw_row_count,
    stored_totals,
    wait_for,
)

PARTITIONS = 3


def _read_all(settings: KafkaSettings, topic: str, count: int) -> list[object]:
    reader = Consumer(
        {
            **settings.client_config(),
            "group.id": f"{settings.group_id}-reader",
            "auto.offset.reset": "earliest",
        }
    )
    reader.subscribe([topic])
    messages: list[object] = []
    try:
        wait_for(
            lambda: bool(messages.extend(reader.consume(500, 0.5))) or len(messages) >= count,
            what=f"{count} messages on {topic}",
        )
    finally:
        reader.close()
    return messages


def test_every_event_lands_once_with_exact_totals_and_bad_ones_in_the_dlq(
    kafka_settings: KafkaSettings, migrated: Client, clickhouse_settings: ClickHouseSettings
) -> None:
    workload = Workload(
        events=6_000, organizations=7, days=4, seed=11, invalid_fraction=0.02,
        duplicate_fraction=0.05, end=FIXED_END,
    )  # fmt: skip
    expected = produce(kafka_settings, workload)
    worker = ConsumerThread(kafka_settings, clickhouse_settings, client=migrated).start()
    total = expected_messages(expected)
    wait_for(lambda: worker.consumed >= total, what="all messages consumed")
    wait_for(
        lambda: caught_up(kafka_settings, PARTITIONS),
        what="offsets committed to the end",
    )
    assert worker.join() == 0
    db = clickhouse_settings.database_name
    assert raw_row_count(migrated, db) == expected["unique_events"]
    assert_totals_match(stored_totals(migrated, db), expected)

    invalid = sum(expected["invalid"].values())
    letters = _read_all(kafka_settings, kafka_settings.dlq_topic, invalid)
    assert len(letters) == invalid
    for letter in letters:
        headers = dict(letter.headers())  # type: ignore[attr-defined]
        assert headers[dlq.HEADER_KIND].decode() in {
            "not_json", "missing_field", "wrong_type", "constraint",
        }  # fmt: skip
        assert headers[dlq.HEADER_MESSAGE]
        assert headers[dlq.HEADER_TOPIC].decode() == kafka_settings.topic
        assert int(headers[dlq.HEADER_PARTITION]) in range(PARTITIONS)
        assert int(headers[dlq.HEADER_OFFSET]) >= 0
        assert letter.key()  # type: ignore[attr-defined]
    rejected = sum(
        worker.sample("aiusage_consumer_events_rejected_total", reason=kind)
        for kind in ("not_json", "missing_field", "wrong_type", "constraint")
    )
    assert rejected == invalid


def test_a_dead_letter_keeps_the_original_bytes_key_and_headers(
    kafka_settings: KafkaSettings, migrated: Client, clickhouse_settings: ClickHouseSettings
) -> None:
    from confluent_kafka import Producer

    producer = Producer(kafka_settings.client_config())
    original = b'{"event_id": "not-a-uuid", "cost_usd": "1"}'
    producer.produce(
        kafka_settings.topic, value=original, key=b"org-x", headers=[("trace", b"abc")]
    )
    producer.flush(10)
    worker = ConsumerThread(kafka_settings, clickhouse_settings, client=migrated).start()
    [letter] = _read_all(kafka_settings, kafka_settings.dlq_topic, 1)
    assert worker.join() == 0
    assert letter.value() == original  # type: ignore[attr-defined]
    assert letter.key() == b"org-x"  # type: ignore[attr-defined]
    headers = letter.headers()  # type: ignore[attr-defined]
    assert headers[0] == ("trace", b"abc")
    named = dict(headers)
    assert named[dlq.HEADER_KIND] == b"constraint"
    assert b"event_id" in named[dlq.HEADER_MESSAGE]


def test_two_consumers_and_rebalances_give_exact_totals(
    kafka_settings: KafkaSettings, migrated: Client, clickhouse_settings: ClickHouseSettings
) -> None:
    first = ConsumerThread(kafka_settings, clickhouse_settings, client=migrated).start()
    # 30 organizations: their keys spread over every partition.
    half = produce(kafka_settings, Workload(3_000, 30, 3, seed=1, end=FIXED_END))
    wait_for(lambda: first.consumed > 0, what="the first consumer to start")
    second = ConsumerThread(kafka_settings, clickhouse_settings, client=migrated).start()
    assigned = "aiusage_consumer_assigned_partitions"
    wait_for(lambda: second.sample(assigned) > 0, what="the rebalance to the second consumer")
    assert first.sample(assigned) + second.sample(assigned) == PARTITIONS
    rest = produce(
        kafka_settings, Workload(3_000, 30, 3, seed=2, duplicate_fraction=0.1, end=FIXED_END)
    )
    wait_for(lambda: second.consumed > 0, what="the second consumer to get partitions")
    assert first.join() == 0  # leaves the group: a second rebalance
    total = expected_messages(half) + expected_messages(rest)
    wait_for(
        lambda: caught_up(kafka_settings, PARTITIONS),
        what="offsets committed to the end",
    )
    assert second.join() == 0
    assert first.consumed + second.consumed >= total
    db = clickhouse_settings.database_name
    assert raw_row_count(migrated, db) == half["unique_events"] + rest["unique_events"]
    merged = stored_totals(migrated, db)
    calls = sum(v["calls"] for days in merged.values() for v in days.values())
    assert calls == half["unique_events"] + rest["unique_events"]


class FlakyWriter:
    """Fails the next ``failures`` inserts, then writes for real."""

    def __init__(self, inner: ClickHouseRowWriter, failures: int, retryable: bool = True) -> None:
        self.inner = inner
        self.failures = failures
        self.retryable = retryable
        self.attempts = 0

    def write(self, rows: Sequence[Row], dedup_token: str) -> None:
        self.attempts += 1
        if self.failures:
            self.failures -= 1
            raise WriteFailed("injected: ClickHouse is unavailable", retryable=self.retryable)
        self.inner.write(rows, dedup_token)


def test_an_outage_pauses_without_commit_or_dlq_and_recovers_everything(
    kafka_settings: KafkaSettings, migrated: Client, clickhouse_settings: ClickHouseSettings
) -> None:
    expected = produce(kafka_settings, Workload(2_000, 4, 2, seed=5, end=FIXED_END))
    writer = FlakyWriter(ClickHouseRowWriter(migrated, clickhouse_settings.database_name), 4)
    worker = ConsumerThread(
        kafka_settings,
        clickhouse_settings,
        client=migrated,
        writer=writer,
        settings=fast_consumer_settings(backoff_initial_s=0.5, backoff_max_s=1.0),
    ).start()
    wait_for(lambda: worker.sample("aiusage_consumer_paused") == 1, what="the pause")
    assert committed_offsets(kafka_settings, PARTITIONS) == dict.fromkeys(range(PARTITIONS), -1001)
    wait_for(lambda: writer.failures == 0, what="the injected failures to pass")
    wait_for(
        lambda: caught_up(kafka_settings, PARTITIONS),
        what="offsets committed after recovery",
    )
    assert worker.join() == 0
    assert worker.sample("aiusage_consumer_write_failures_total", retryable="true") == 4
    assert worker.sample("aiusage_consumer_paused") == 0
    assert end_offsets(kafka_settings, kafka_settings.dlq_topic, PARTITIONS) == dict.fromkeys(
        range(PARTITIONS), 0
    )
    db = clickhouse_settings.database_name
    assert raw_row_count(migrated, db) == expected["unique_events"]
    # Retries carried the same deduplication token: no duplicate rows even before FINAL.
    assert raw_row_count(migrated, db, final=False) == expected["unique_events"]


def test_a_write_that_cannot_succeed_stops_the_consumer_without_committing(
    kafka_settings: KafkaSettings, migrated: Client, clickhouse_settings: ClickHouseSettings
) -> None:
    produce(kafka_settings, Workload(500, 2, 1, seed=3, end=FIXED_END))
    writer = FlakyWriter(
        ClickHouseRowWriter(migrated, clickhouse_settings.database_name), 1, retryable=False
    )
    worker = ConsumerThread(kafka_settings, clickhouse_settings, client=migrated, writer=writer)
    worker.start()
    wait_for(lambda: worker.error is not None, what="the consumer to stop")
    worker.join()
    assert isinstance(worker.error, ConsumerStopped)
    assert worker.error.exit_code == EXIT_WRITE_FAILED
    assert committed_offsets(kafka_settings, PARTITIONS) == dict.fromkeys(range(PARTITIONS), -1001)
    assert raw_row_count(migrated, clickhouse_settings.database_name) == 0


def test_the_dlq_limit_stops_the_consumer_and_commits_what_came_before(
    kafka_settings: KafkaSettings, migrated: Client, clickhouse_settings: ClickHouseSettings
) -> None:
    single = KafkaSettings(
        bootstrap_servers=kafka_settings.bootstrap_servers,
        topic=kafka_settings.topic,
        group_id=kafka_settings.group_id,
    )
    with UsageProducer(single) as producer:
        for index in range(3):
            producer.send_raw(
                event_payload(event_id=f"00000000-0000-4000-8000-00000000000{index}"), b"k", None
            )
        for _ in range(10):
            producer.send_raw(b"not json at all", b"k", None)
    worker = ConsumerThread(
        kafka_settings,
        clickhouse_settings,
        client=migrated,
        settings=fast_consumer_settings(dlq_max_consecutive=5),
    ).start()
    wait_for(lambda: worker.error is not None, what="the DLQ limit")
    worker.join()
    assert isinstance(worker.error, ConsumerStopped)
    assert worker.error.exit_code == EXIT_DLQ_LIMIT
    assert "5 invalid events in a row" in str(worker.error)
    committed = committed_offsets(kafka_settings, PARTITIONS)
    # Key "k" puts everything on one partition: 3 valid + 4 dead-lettered are committed.
    assert sorted(committed.values())[-1] == 7
    assert raw_row_count(migrated, clickhouse_settings.database_name) == 3
    assert json.loads(event_payload())["model"] == "m"


@pytest.mark.parametrize("offset_hours", [-11, 0, 5.5, 14])
def test_timestamps_land_on_their_utc_day_whatever_their_offset(
    offset_hours: float,
    kafka_settings: KafkaSettings,
    migrated: Client,
    clickhouse_settings: ClickHouseSettings,
) -> None:
    hours, minutes = int(offset_hours), int(abs(offset_hours - int(offset_hours)) * 60)
    sign = "-" if offset_hours < 0 else "+"
    offset = f"{sign}{abs(hours):02d}:{minutes:02d}"
    # 23:59:59.9995 UTC on 2026-03-01, written in the local time of the offset.
    from datetime import UTC, datetime, timedelta, timezone

    instant = datetime(2026, 3, 1, 23, 59, 59, 999_500, tzinfo=UTC)
    local = instant.astimezone(timezone(timedelta(hours=offset_hours)))
    stamp = local.strftime("%Y-%m-%dT%H:%M:%S.%f") + offset
    with UsageProducer(kafka_settings) as producer:
        producer.send_raw(event_payload(timestamp=stamp), b"k", None)
    worker = ConsumerThread(kafka_settings, clickhouse_settings, client=migrated).start()
    db = clickhouse_settings.database_name
    wait_for(lambda: raw_row_count(migrated, db) == 1, what="the row")
    assert worker.join() == 0
    day, stored = migrated.query(
        f"SELECT toString(toDate(timestamp)), timestamp FROM `{db}`.ai_usage_log"
    ).result_rows[0]
    assert day == "2026-03-01"
    assert stored.replace(tzinfo=UTC) == datetime(2026, 3, 1, 23, 59, 59, 999_000, tzinfo=UTC)
