"""In-memory stand-ins for unit tests of the ingest loop: a consumer, a clock, a writer
and dead letters. Integration tests run the same loop against the real broker."""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from concurrent.futures import Executor, Future
from dataclasses import dataclass, field
from typing import Any

from confluent_kafka import TopicPartition

from consumer.processing import InvalidMessage, Row
from consumer.writer import WriteFailed


class FakeClock:
    def __init__(self, start: float = 1_800_000_000.0) -> None:
        self.now = start

    def time(self) -> float:
        return self.now

    def monotonic(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class FakeMessage:
    _topic: str
    _partition: int
    _offset: int
    _value: bytes | None
    _key: bytes | None = b"k"
    _headers: list[tuple[str, bytes]] | None = None

    def error(self) -> None:
        return None

    def topic(self) -> str:
        return self._topic

    def partition(self) -> int:
        return self._partition

    def offset(self) -> int:
        return self._offset

    def value(self) -> bytes | None:
        return self._value

    def key(self) -> bytes | None:
        return self._key

    def headers(self) -> list[tuple[str, bytes]] | None:
        return self._headers


class FakeConsumer:
    """Partitions of one topic, each a list of messages, served in order unless paused."""

    def __init__(self, topic: str, partitions: int, clock: FakeClock) -> None:
        self.topic = topic
        self.clock = clock
        self.logs: dict[int, list[FakeMessage]] = {p: [] for p in range(partitions)}
        self.positions = dict.fromkeys(range(partitions), 0)
        self.committed: dict[int, int] = {}
        self.paused: set[int] = set()
        self.closed = False
        self.on_close_revoke = False
        self.callbacks: dict[str, Any] = {}

    def append(self, partition: int, value: bytes | None) -> FakeMessage:
        log = self.logs[partition]
        message = FakeMessage(self.topic, partition, len(log), value)
        log.append(message)
        return message

    def subscribe(self, topics: list[str], **callbacks: Any) -> None:
        self.callbacks = callbacks
        self.callbacks["on_assign"](self, [TopicPartition(self.topic, p) for p in self.logs])

    def assign(self, partitions: list[TopicPartition]) -> None:
        for tp in partitions:
            self.positions[tp.partition] = self.committed.get(tp.partition, 0)

    def revoke_all(self) -> None:
        self.callbacks["on_revoke"](self, [TopicPartition(self.topic, p) for p in self.logs])
        self.callbacks["on_assign"](self, [TopicPartition(self.topic, p) for p in self.logs])

    def consume(self, num_messages: int, timeout: float) -> list[FakeMessage]:
        out: list[FakeMessage] = []
        for partition, log in self.logs.items():
            if partition in self.paused:
                continue
            while self.positions[partition] < len(log) and len(out) < num_messages:
                out.append(log[self.positions[partition]])
                self.positions[partition] += 1
        if not out:
            self.clock.advance(timeout)
        return out

    def poll(self, timeout: float) -> None:
        self.clock.advance(timeout)

    def commit(self, offsets: list[TopicPartition], asynchronous: bool) -> None:
        assert not asynchronous
        for tp in offsets:
            self.committed[tp.partition] = tp.offset

    def pause(self, partitions: list[TopicPartition]) -> None:
        self.paused |= {tp.partition for tp in partitions}

    def resume(self, partitions: list[TopicPartition]) -> None:
        self.paused -= {tp.partition for tp in partitions}

    def close(self) -> None:
        # Like librdkafka, leaving the group revokes the assignment first.
        if self.on_close_revoke and self.callbacks:
            self.callbacks["on_revoke"](self, [TopicPartition(self.topic, p) for p in self.logs])
        self.closed = True


@dataclass
class FakeWriter:
    """Stores rows by dedup token; ``fail_next`` failures of the given kind come first."""

    fail_next: int = 0
    retryable: bool = True
    written: dict[str, list[Row]] = field(default_factory=dict)
    attempts: list[str] = field(default_factory=list)

    def write(self, rows: Sequence[Row], dedup_token: str) -> None:
        self.attempts.append(dedup_token)
        if self.fail_next:
            self.fail_next -= 1
            raise WriteFailed("injected failure", retryable=self.retryable)
        self.written.setdefault(dedup_token, list(rows))

    @property
    def rows(self) -> list[Row]:
        return [row for rows in self.written.values() for row in rows]


@dataclass
class FakeDeadLetters:
    sent: list[tuple[FakeMessage, InvalidMessage]] = field(default_factory=list)
    acknowledged: int = 0
    fail_flushes: int = 0
    closed: bool = False

    def send(self, message: Any, error: InvalidMessage) -> None:
        self.sent.append((message, error))

    def flush(self, timeout_s: float) -> None:
        from consumer.dlq import DlqDeliveryFailed

        if self.fail_flushes and len(self.sent) > self.acknowledged:
            self.fail_flushes -= 1
            raise DlqDeliveryFailed("injected dead-letter failure")
        self.acknowledged = len(self.sent)

    def discard_pending(self) -> None:
        del self.sent[self.acknowledged :]

    def close(self, timeout_s: float = 10) -> None:
        self.closed = True


def event_payload(organization_id: str = "org-1", **overrides: Any) -> bytes:
    fields: dict[str, Any] = {
        "event_id": str(uuid.uuid4()),
        "timestamp": "2026-03-01T12:00:00Z",
        "organization_id": organization_id,
        "model": "m",
        "input_tokens": 10,
        "cached_tokens": 5,
        "output_tokens": 2,
        "cost_usd": "0.001",
    }
    fields.update(overrides)
    return json.dumps(fields).encode()


class InlineExecutor(Executor):
    """Runs each submitted write at once, so unit tests stay deterministic."""

    def submit(self, fn: Any, /, *args: Any, **kwargs: Any) -> Future[Any]:
        future: Future[Any] = Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except BaseException as err:  # handed to the caller through the future
            future.set_exception(err)
        return future
