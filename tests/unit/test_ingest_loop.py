"""The ingest loop's commit, back-off and dead-letter rules, driven by a fake clock."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest

from consumer.dlq import DlqLimitExceeded
from consumer.loop import FatalWriteError, IngestLoop
from consumer.metrics import ConsumerMetrics
from consumer.settings import ConsumerSettings
from tests.fakes import (
    FakeClock,
    FakeConsumer,
    FakeDeadLetters,
    FakeWriter,
    InlineExecutor,
    event_payload,
)

TOPIC = "usage"


class Rig:
    def __init__(self, partitions: int = 2, **settings: Any) -> None:
        self.clock = FakeClock()
        self.consumer = FakeConsumer(TOPIC, partitions, self.clock)
        self.writer = FakeWriter()
        self.dlq = FakeDeadLetters()
        self.metrics = ConsumerMetrics()
        defaults: dict[str, Any] = {"batch_max_rows": 100, "batch_max_wait_s": 1.0}
        self.settings = ConsumerSettings(**{**defaults, **settings})
        self.loop = IngestLoop(
            consumer=self.consumer,
            topic=TOPIC,
            settings=self.settings,
            writer=self.writer,
            dead_letters=self.dlq,
            metrics=self.metrics,
            clock=self.clock,
            executor=InlineExecutor(),
        )
        self.stop = threading.Event()

        self._started = False

    def _start_once(self) -> None:
        if not self._started:
            self.loop.start()
            self._started = True

    def turns(self, count: int) -> None:
        self._start_once()
        for _ in range(count):
            self.loop.step()

    def until(self, condition: Callable[[], bool], limit: int = 1000) -> None:
        self._start_once()
        for _ in range(limit):
            if condition():
                return
            self.loop.step()
        raise AssertionError("condition not reached")


def _fill(rig: Rig, per_partition: int) -> None:
    for partition in rig.consumer.logs:
        for _ in range(per_partition):
            rig.consumer.append(partition, event_payload(f"org-{partition}"))


def test_offsets_are_committed_only_after_the_write() -> None:
    rig = Rig()
    _fill(rig, 5)
    rig.turns(1)  # consumed, batch not yet due
    assert rig.consumer.committed == {}
    assert rig.writer.rows == []
    rig.clock.advance(1.0)
    rig.until(lambda: bool(rig.consumer.committed))
    assert len(rig.writer.rows) == 10
    assert rig.consumer.committed == {0: 5, 1: 5}


def test_a_full_batch_is_written_without_waiting() -> None:
    rig = Rig(batch_max_rows=4)
    _fill(rig, 4)  # 8 messages: two full batches
    rig.until(lambda: sum(rig.consumer.committed.values()) == 8)
    assert len(rig.writer.written) == 2
    assert len(rig.writer.rows) == 8
    assert rig.clock.now - FakeClock().now < rig.settings.batch_max_wait_s


def test_an_outage_pauses_retries_the_same_batch_and_loses_nothing() -> None:
    rig = Rig(backoff_initial_s=1.0, backoff_max_s=4.0)
    rig.writer.fail_next = 3
    _fill(rig, 5)
    rig.turns(1)
    rig.clock.advance(1.0)
    rig.until(lambda: bool(rig.consumer.paused))  # the first failure
    assert rig.consumer.paused == {0, 1}
    assert rig.consumer.committed == {}
    assert rig.loop.ready()[0] is False
    # More messages arrive during the outage: paused partitions are not read.
    _fill(rig, 3)
    rig.until(lambda: not rig.consumer.paused)
    assert len(set(rig.writer.attempts)) == 1, "every retry carries the same dedup token"
    assert len(rig.writer.attempts) == 4
    assert rig.dlq.sent == []
    assert rig.consumer.committed == {0: 5, 1: 5}
    rig.clock.advance(1.0)
    rig.until(lambda: rig.consumer.committed == {0: 8, 1: 8})
    assert len(rig.writer.rows) == 16
    assert rig.metrics.registry.get_sample_value("aiusage_consumer_paused") == 0


def test_back_off_doubles_up_to_its_bound() -> None:
    rig = Rig(backoff_initial_s=1.0, backoff_max_s=3.0)
    rig.writer.fail_next = 10
    _fill(rig, 1)
    rig.turns(1)
    rig.clock.advance(1.0)
    attempts_at: list[float] = []
    for _ in range(400):
        before = len(rig.writer.attempts)
        rig.loop.step()
        if len(rig.writer.attempts) > before:
            attempts_at.append(rig.clock.now)
        if len(attempts_at) == 5:
            break
    gaps = [round(b - a, 1) for a, b in zip(attempts_at, attempts_at[1:], strict=False)]
    assert gaps[0] >= 1.0
    assert gaps[1] >= 2.0
    assert all(gap <= 3.0 + rig.settings.poll_timeout_s + 1e-9 for gap in gaps)


def test_a_write_that_cannot_succeed_stops_without_committing() -> None:
    rig = Rig()
    rig.writer.fail_next = 1
    rig.writer.retryable = False
    _fill(rig, 3)
    rig.turns(1)
    rig.clock.advance(1.0)
    with pytest.raises(FatalWriteError, match="injected failure"):
        rig.turns(2)
    assert rig.consumer.committed == {}


def test_a_bad_event_is_dead_lettered_and_never_blocks_its_partition() -> None:
    rig = Rig(partitions=1)
    rig.consumer.append(0, event_payload())
    rig.consumer.append(0, b"{not json")
    rig.consumer.append(0, event_payload(cost_usd="-1"))
    rig.consumer.append(0, None)
    rig.consumer.append(0, b"x" * 70_000)
    rig.consumer.append(0, event_payload())
    rig.turns(1)
    rig.clock.advance(1.0)
    rig.until(lambda: bool(rig.consumer.committed))
    assert len(rig.writer.rows) == 2
    kinds = [error.kind for _, error in rig.dlq.sent]
    assert kinds == ["not_json", "constraint", "empty", "oversized"]
    assert [message.offset() for message, _ in rig.dlq.sent] == [1, 2, 3, 4]
    assert rig.consumer.committed == {0: 6}
    assert rig.dlq.acknowledged == 4


def test_dead_letters_unacknowledged_mean_no_commit() -> None:
    rig = Rig(partitions=1, backoff_initial_s=1.0)
    rig.dlq.fail_flushes = 2
    rig.consumer.append(0, b"{broken")
    rig.consumer.append(0, event_payload())
    rig.turns(1)
    rig.clock.advance(1.0)
    rig.turns(1)
    assert rig.consumer.committed == {}
    assert rig.writer.rows == []
    rig.until(lambda: bool(rig.consumer.committed))
    assert rig.consumer.committed == {0: 2}
    assert len(rig.writer.rows) == 1


def test_consecutive_dlq_limit_stops_before_the_offending_event() -> None:
    rig = Rig(partitions=1, dlq_max_consecutive=3)
    rig.consumer.append(0, event_payload())
    for _ in range(5):
        rig.consumer.append(0, b"garbage")
    rig.consumer.append(0, event_payload())
    with pytest.raises(DlqLimitExceeded, match="3 invalid events in a row"):
        rig.loop.run(rig.stop)
    # The valid event and two dead letters are stored and committed; the third bad
    # event, which hit the limit, is neither dead-lettered nor committed.
    assert len(rig.writer.rows) == 1
    assert len(rig.dlq.sent) == 2
    assert rig.consumer.committed == {0: 3}
    assert rig.consumer.closed


def test_dlq_ratio_limit() -> None:
    rig = Rig(partitions=1, dlq_max_ratio=0.5, dlq_ratio_window=10, dlq_max_consecutive=100)
    for index in range(20):
        rig.consumer.append(0, b"bad" if index % 3 else event_payload())
    with pytest.raises(DlqLimitExceeded, match="of the last 10 events were invalid"):
        rig.loop.run(rig.stop)


def test_revoke_during_an_outage_drops_the_batch_uncommitted() -> None:
    rig = Rig()
    rig.writer.fail_next = 100
    _fill(rig, 3)
    rig.turns(1)
    rig.clock.advance(1.0)
    rig.until(lambda: bool(rig.consumer.paused))
    rig.consumer.revoke_all()
    assert rig.consumer.committed == {}
    assert not rig.consumer.paused
    # Re-assigned from the committed offsets (none): everything is read again.
    rig.writer.fail_next = 0
    rig.clock.advance(1.0)
    rig.until(lambda: rig.consumer.committed == {0: 3, 1: 3})
    assert len(rig.writer.rows) == 6


def test_revoke_writes_and_commits_the_batch_first() -> None:
    rig = Rig()
    _fill(rig, 2)
    rig.turns(1)
    rig.consumer.revoke_all()
    assert rig.consumer.committed == {0: 2, 1: 2}
    assert len(rig.writer.rows) == 4


def test_stop_writes_and_commits_the_batch_in_flight_and_closes() -> None:
    rig = Rig()
    _fill(rig, 2)

    def stop_after_first_poll(original: Any = rig.consumer.consume) -> Any:
        def consume(num_messages: int, timeout: float) -> Any:
            out = original(num_messages, timeout)
            rig.stop.set()
            return out

        return consume

    rig.consumer.consume = stop_after_first_poll()  # type: ignore[method-assign]
    assert rig.loop.run(rig.stop) is True
    assert rig.consumer.committed == {0: 2, 1: 2}
    assert rig.consumer.closed and rig.dlq.closed


def test_stop_during_an_outage_gives_up_after_the_timeout_uncommitted() -> None:
    rig = Rig(shutdown_timeout_s=5.0, backoff_initial_s=1.0)
    rig.writer.fail_next = 1000
    _fill(rig, 2)
    rig.turns(1)
    rig.stop.set()
    started = rig.clock.now
    assert rig.loop.run(rig.stop) is False
    assert rig.clock.now - started <= 5.0 + 1.0
    assert rig.consumer.committed == {}
    assert rig.consumer.closed


def test_health_reports_a_stalled_consumer() -> None:
    rig = Rig(stall_after_s=10.0, backoff_initial_s=1.0)
    rig.writer.fail_next = 1000
    _fill(rig, 1)
    rig.turns(1)
    rig.clock.advance(1.0)
    rig.turns(1)
    assert rig.loop.health()[0] is True
    for _ in range(60):
        rig.clock.advance(0.5)
        rig.loop.step()
    ok, details = rig.loop.health()
    assert ok is False
    assert details["outage_s"] >= 10
    assert "injected failure" in details["last_write_error"]


def test_after_a_fatal_write_closing_does_not_write_or_commit_the_batch() -> None:
    rig = Rig()
    rig.writer.fail_next = 1
    rig.writer.retryable = False
    _fill(rig, 3)
    rig.consumer.on_close_revoke = True
    with pytest.raises(FatalWriteError):
        rig.loop.run(rig.stop)
    assert rig.consumer.closed
    assert rig.consumer.committed == {}
    assert rig.writer.rows == []
