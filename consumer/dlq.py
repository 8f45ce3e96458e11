"""The dead-letter topic, and the limit that keeps a bug from draining a topic into it.

A dead-lettered message keeps its original value, key and headers, and gains
``aiusage.error.*`` headers: the error kind and message, and the original topic,
partition and offset. Its offsets are committed only after the broker acknowledged it.
"""

from __future__ import annotations

import functools
import itertools
from dataclasses import dataclass
from typing import Any, cast

from confluent_kafka import KafkaError, Message, Producer

from aiusage.settings import KafkaSettings
from consumer.processing import InvalidMessage

HEADER_KIND = "aiusage.error.kind"
HEADER_MESSAGE = "aiusage.error.message"
HEADER_TOPIC = "aiusage.original.topic"
HEADER_PARTITION = "aiusage.original.partition"
HEADER_OFFSET = "aiusage.original.offset"
MAX_ERROR_MESSAGE = 1000


class DlqLimitExceeded(Exception):
    """Too many invalid events: stop rather than dead-letter the whole topic."""


class DlqDeliveryFailed(Exception):
    """The broker did not acknowledge dead-lettered messages; their offsets stay uncommitted."""


@dataclass
class DlqPolicy:
    """Stops the consumer at ``max_consecutive`` invalid events in a row, or when more
    than ``max_ratio`` of a window of ``window`` events (counted in tumbling windows)
    were invalid. ``record_invalid`` raises before the offending event is sent anywhere.
    """

    max_consecutive: int
    max_ratio: float
    window: int

    def __post_init__(self) -> None:
        self._consecutive = 0
        self._seen = 0
        self._invalid = 0
        self._last_error = ""

    def record_valid(self, count: int = 1) -> None:
        """``count`` valid events in a row."""
        if count <= 0:
            return
        self._consecutive = 0
        self._seen += count
        while self._seen >= self.window:
            # Windows made only of valid events carry no invalid count over.
            self._seen -= self.window
            self._invalid = 0

    def record_invalid(self, error: str) -> None:
        if self._consecutive + 1 >= self.max_consecutive:
            raise DlqLimitExceeded(
                f"{self._consecutive + 1} invalid events in a row (limit "
                f"AIUSAGE_CONSUMER_DLQ_MAX_CONSECUTIVE={self.max_consecutive}); last: {error}"
            )
        if self._seen + 1 >= self.window and (self._invalid + 1) / self.window > self.max_ratio:
            raise DlqLimitExceeded(
                f"{self._invalid + 1} of the last {self.window} events were invalid (limit "
                f"AIUSAGE_CONSUMER_DLQ_MAX_RATIO={self.max_ratio}); last: {error}"
            )
        self._consecutive += 1
        self._invalid += 1
        self._seen += 1
        self._last_error = error
        if self._seen >= self.window:
            self._close_window()

    def _close_window(self) -> None:
        self._seen = 0
        self._invalid = 0


def dlq_headers(error: InvalidMessage, topic: str, partition: int, offset: int) -> list[Any]:
    return [
        (HEADER_KIND, error.kind.encode()),
        (HEADER_MESSAGE, error.reason[:MAX_ERROR_MESSAGE].encode("utf-8", "replace")),
        (HEADER_TOPIC, topic.encode()),
        (HEADER_PARTITION, str(partition).encode()),
        (HEADER_OFFSET, str(offset).encode()),
    ]


Record = tuple[bytes | None, bytes | None, list[Any]]


class DeadLetterQueue:
    def __init__(self, settings: KafkaSettings) -> None:
        self.topic = settings.dlq_topic
        self._producer = Producer(
            {
                **settings.client_config(),
                "enable.idempotence": True,
                "acks": "all",
                "linger.ms": 20,
                "client.id": "aiusage-dlq",
            }
        )
        self._ids = itertools.count()
        self._unacked: dict[int, Record] = {}
        self._failed: dict[int, str] = {}

    def send(self, message: Message, error: InvalidMessage) -> None:
        headers = list(message.headers() or [])
        topic, partition, offset = cast(
            tuple[str, int, int], (message.topic(), message.partition(), message.offset())
        )
        headers += dlq_headers(error, topic, partition, offset)
        record_id = next(self._ids)
        self._unacked[record_id] = (message.value(), message.key(), headers)
        self._produce(record_id)

    def _produce(self, record_id: int) -> None:
        value, key, headers = self._unacked[record_id]
        on_delivery = functools.partial(self._delivered, record_id)
        while True:
            try:
                self._producer.produce(
                    self.topic, value=value, key=key, headers=headers, on_delivery=on_delivery
                )
                return
            except BufferError:
                self._producer.poll(0.1)

    def _delivered(self, record_id: int, err: KafkaError | None, message: Message) -> None:
        if err is None:
            self._unacked.pop(record_id, None)
        elif record_id in self._unacked:
            self._failed[record_id] = str(err.str())

    def flush(self, timeout_s: float) -> None:
        """Wait until every dead letter sent so far is acknowledged.

        Those the broker refused are produced again and DlqDeliveryFailed is raised, so
        the caller keeps its offsets uncommitted and calls flush again later.
        """
        if not self._unacked:
            return
        self._producer.flush(timeout_s)
        if self._failed:
            reason = next(iter(self._failed.values()))
            retry, self._failed = list(self._failed), {}
            for record_id in retry:
                self._produce(record_id)
            raise DlqDeliveryFailed(f"dead-letter delivery to {self.topic} failed: {reason}")
        if self._unacked:
            raise DlqDeliveryFailed(
                f"{len(self._unacked)} dead letters to {self.topic} not acknowledged yet"
            )

    def discard_pending(self) -> None:
        """Forget the dead letters of a dropped batch: its offsets will be read again."""
        self._unacked.clear()
        self._failed.clear()

    def close(self, timeout_s: float = 10) -> None:
        self._producer.flush(timeout_s)
