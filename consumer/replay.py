"""Replaying dead letters to the usage topic.

The replay reads the dead-letter topic from the start up to its end offsets *as they
were when the replay began*, and re-publishes the matching messages unchanged (value,
key and the original headers, without the ``aiusage.*`` error headers). An event that
is still invalid is dead-lettered again by the consumer, after that snapshot: the
replay never reads its own output, so there is no loop. A replayed event that was
already stored collapses on its event_id.
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from confluent_kafka import Consumer, KafkaException, Message, Producer, TopicPartition

from aiusage.settings import KafkaSettings
from consumer.dlq import HEADER_KIND

HEADER_REPLAYED_FROM = "aiusage.replayed.from"


@dataclass(frozen=True)
class ReplayFilter:
    kinds: frozenset[str] = frozenset()
    since: datetime | None = None
    until: datetime | None = None

    def matches(self, kind: str, dead_lettered_at: datetime) -> bool:
        if self.kinds and kind not in self.kinds:
            return False
        if self.since is not None and dead_lettered_at < self.since:
            return False
        return self.until is None or dead_lettered_at < self.until


@dataclass
class ReplayReport:
    scanned: int = 0
    replayed: int = 0
    by_kind: Counter[str] = field(default_factory=Counter)


Header = tuple[str, str | bytes | None]


def _headers(message: Message) -> list[Header]:
    raw = message.headers() or []
    return list(raw.items()) if isinstance(raw, dict) else list(raw)


def replay_headers(message: Message) -> list[Header]:
    """The original headers, without ours, plus where the message was replayed from."""
    kept = [(k, v) for k, v in _headers(message) if not k.startswith("aiusage.")]
    source = f"{message.topic()}/{message.partition()}@{message.offset()}"
    return [*kept, (HEADER_REPLAYED_FROM, source.encode())]


def header_value(message: Message, name: str) -> str:
    """A header's value as text, or "" when the message does not carry it."""
    for key, value in _headers(message):
        if key == name and value is not None:
            return value.decode("utf-8", "replace") if isinstance(value, bytes) else value
    return ""


def snapshot_ends(consumer: Consumer, topic: str, timeout_s: float) -> dict[int, int]:
    metadata = consumer.list_topics(topic, timeout=timeout_s).topics[topic]
    if metadata.error is not None:
        raise KafkaException(metadata.error)
    return {
        partition: consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout_s)[1]
        for partition in metadata.partitions
    }


def replay(
    settings: KafkaSettings,
    chosen: ReplayFilter,
    *,
    dry_run: bool = False,
    progress: Callable[[int], object] | None = None,
    timeout_s: float = 30.0,
) -> ReplayReport:
    consumer = Consumer(
        {
            **settings.client_config(),
            "group.id": f"aiusage-dlq-replay-{uuid.uuid4().hex[:8]}",
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
        }
    )
    producer = None if dry_run else Producer(
        {**settings.client_config(), "enable.idempotence": True, "acks": "all"}
    )  # fmt: skip
    report = ReplayReport()
    try:
        ends = snapshot_ends(consumer, settings.dlq_topic, timeout_s)
        remaining = {p for p, end in ends.items() if end > 0}
        consumer.assign([TopicPartition(settings.dlq_topic, p, 0) for p in remaining])
        while remaining:
            batch = consumer.consume(1000, 1.0)
            for message in _within(batch, ends, remaining):
                report.scanned += 1
                kind = header_value(message, HEADER_KIND) or "unknown"
                _, stamp = message.timestamp()
                when = datetime.fromtimestamp(stamp / 1000, UTC)
                if not chosen.matches(kind, when):
                    continue
                report.by_kind[kind] += 1
                report.replayed += 1
                if producer is not None:
                    _produce(producer, settings.topic, message)
            if progress is not None and batch:
                progress(len(batch))
        if producer is not None and producer.flush(timeout_s):
            raise KafkaException("replayed messages were not all acknowledged in time")
    finally:
        consumer.close()
    return report


def _within(
    batch: Iterable[Message], ends: dict[int, int], remaining: set[int]
) -> Iterable[Message]:
    for message in batch:
        if message.error() is not None:
            continue
        partition, offset = message.partition(), message.offset()
        if partition is None or offset is None or offset >= ends[partition]:
            remaining.discard(partition)
            continue
        if offset == ends[partition] - 1:
            remaining.discard(partition)
        yield message


def _produce(producer: Producer, topic: str, message: Message) -> None:
    while True:
        try:
            producer.produce(
                topic, value=message.value(), key=message.key(), headers=replay_headers(message)
            )
            return
        except BufferError:
            producer.poll(0.1)
