"""``aiusage consume`` as a real process: SIGTERM, a loop of SIGKILLs, and a broker restart."""

from __future__ import annotations

import random
import signal
import threading
import time
from pathlib import Path
from typing import Any

from clickhouse_connect.driver.client import Client

from aiusage.loadgen import LoadGenerator, Workload
from aiusage.producer import UsageProducer
from aiusage.settings import ClickHouseSettings, KafkaSettings
from tests.pipeline import (
    FIXED_END,
    ConsumerThread,
    assert_totals_match,
    caught_up,
    committed_offsets,
    produce,
    raw_row_count,
    stored_totals,
    wait_for,
)
from tests.reliability.conftest import ConsumerProcess, stop
from tests.services import local_kafka

PARTITIONS = 3


def _assert_committed_rows_are_stored(
    stored: dict[str, Any], committed: dict[int, int], invalid_offsets: dict[int, set[int]]
) -> None:
    """Every valid message below a committed offset is in the raw log."""
    for partition, offset in committed.items():
        have = set(stored["offsets"].get(str(partition), []))
        for position in range(max(offset, 0)):
            if position not in invalid_offsets.get(partition, set()):
                assert position in have, f"committed offset {partition}@{position} is not stored"


def test_sigterm_finishes_the_batch_commits_and_exits_zero(
    consumer_process: ConsumerProcess, kafka_settings: KafkaSettings, tmp_path: Path
) -> None:
    expected = produce(kafka_settings, Workload(4_000, 6, 3, seed=21, end=FIXED_END))
    process = consumer_process.start_and_wait(tmp_path / "consume.log")
    wait_for(lambda: caught_up(kafka_settings, PARTITIONS), 90, "the consumer to catch up")
    started = time.monotonic()
    assert stop(process) == 0, (tmp_path / "consume.log").read_text()[-2000:]
    assert time.monotonic() - started < 30
    log = (tmp_path / "consume.log").read_text()
    assert "revoked" in log  # it left the group
    stored = consumer_process.probe()
    assert stored["rows_final"] == expected["unique_events"]
    assert_totals_match(stored["totals"], expected)


def test_sigterm_in_the_middle_of_a_stream_commits_only_what_is_stored(
    consumer_process: ConsumerProcess, kafka_settings: KafkaSettings, tmp_path: Path
) -> None:
    stop_producing = threading.Event()

    def stream() -> None:
        with UsageProducer(kafka_settings) as producer:
            for message in LoadGenerator(Workload(200_000, 6, 3, seed=4, end=FIXED_END)):
                if stop_producing.is_set():
                    break
                producer.send_raw(message.payload, message.key, message.event_id)
                time.sleep(0.0002)

    producer_thread = threading.Thread(target=stream)
    producer_thread.start()
    try:
        process = consumer_process.start_and_wait(tmp_path / "consume.log")
        wait_for(
            lambda: any(o > 0 for o in committed_offsets(kafka_settings, PARTITIONS).values()),
            90,
            "a first commit",
        )
        time.sleep(1.0)  # mid-stream on purpose: batches are in flight
        assert stop(process) == 0
    finally:
        stop_producing.set()
        producer_thread.join()
    committed = committed_offsets(kafka_settings, PARTITIONS)
    stored = consumer_process.probe()
    _assert_committed_rows_are_stored(stored, committed, {})
    assert stored["rows_final"] >= sum(max(o, 0) for o in committed.values())


def test_a_loop_of_sigkills_loses_nothing_and_counts_nothing_twice(
    consumer_process: ConsumerProcess, kafka_settings: KafkaSettings, tmp_path: Path
) -> None:
    workload = Workload(
        30_000, 8, 4, seed=33, invalid_fraction=0.01, duplicate_fraction=0.03, end=FIXED_END
    )
    generator = LoadGenerator(workload)
    produced = threading.Event()

    def stream() -> None:
        with UsageProducer(kafka_settings) as producer:
            for index, message in enumerate(generator):
                producer.send_raw(message.payload, message.key, message.event_id)
                if index % 100 == 0:
                    time.sleep(0.03)  # a stream of a few thousand events a second
        produced.set()

    producer_thread = threading.Thread(target=stream)
    producer_thread.start()
    rng = random.Random(7)
    log = tmp_path / "consume.log"
    # Static membership: a restarted consumer gets its partitions back at once.
    consumer_process.extra_env = {"AIUSAGE_CONSUMER_GROUP_INSTANCE_ID": "reliability-1"}

    def committed_total() -> int:
        committed = committed_offsets(kafka_settings, PARTITIONS).values()
        return sum(max(offset, 0) for offset in committed)

    progress: list[int] = []
    try:
        while len(progress) < 8 and not (produced.is_set() and len(progress) >= 4):
            before = committed_total()
            process = consumer_process.start(log)
            # Kill once this process is working (it committed something new), or once
            # there is nothing left for it to do.
            wait_for(
                lambda b=before: committed_total() > b or caught_up(kafka_settings, PARTITIONS),
                60,
                "progress before the kill",
            )
            time.sleep(rng.uniform(0.0, 0.6))
            process.send_signal(signal.SIGKILL)
            process.wait(30)
            progress.append(committed_total())
    finally:
        producer_thread.join()
    assert produced.is_set()
    # Several kills landed while the consumer was making progress.
    assert len(set(progress)) >= 3, progress
    process = consumer_process.start_and_wait(log)
    wait_for(lambda: caught_up(kafka_settings, PARTITIONS), 120, "the last consumer to catch up")
    assert stop(process) == 0
    expected = generator.expected()
    stored = consumer_process.probe()
    assert stored["rows_final"] == expected["unique_events"]
    assert_totals_match(stored["totals"], expected)


def test_a_broker_restart_loses_nothing(
    tmp_path: Path, clickhouse_settings: ClickHouseSettings, migrated: Client
) -> None:
    port = "19192"
    env = {"AIUSAGE_LOCAL_KAFKA_STATE_DIR": str(tmp_path / "broker")}
    started = local_kafka("start", "--port", port, env=env)
    assert started.returncode == 0, started.stderr
    try:
        kafka = KafkaSettings(
            bootstrap_servers=f"127.0.0.1:{port}", topic="restart", group_id="restart",
            partitions=PARTITIONS,
        )  # fmt: skip
        worker = ConsumerThread(kafka, clickhouse_settings, client=migrated).start()
        first = produce(kafka, Workload(3_000, 5, 2, seed=8, end=FIXED_END))
        wait_for(lambda: worker.consumed >= 3_000, 60, "the first half")
        assert local_kafka("restart", "--port", port, env=env).returncode == 0
        second = produce(kafka, Workload(3_000, 5, 2, seed=9, end=FIXED_END))
        wait_for(lambda: caught_up(kafka, PARTITIONS), 120, "catch-up after the restart")
        assert worker.join() == 0
    finally:
        local_kafka("stop", "--port", port, env=env)
    db = clickhouse_settings.database_name
    assert raw_row_count(migrated, db) == first["unique_events"] + second["unique_events"]
    calls = sum(v["calls"] for days in stored_totals(migrated, db).values() for v in days.values())
    assert calls == first["unique_events"] + second["unique_events"]
