"""A batch of rows with the offsets it covers, and the policy that says when to flush.

Offsets travel with the data: a batch knows, for each partition it read, the next
offset to commit once its rows (and its dead-lettered messages) are safely stored.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from consumer.processing import Row

TopicPartition = tuple[str, int]


@dataclass
class Batch:
    rows: list[Row] = field(default_factory=list)
    payload_bytes: int = 0
    messages: int = 0
    invalid: int = 0
    opened_at: float | None = None
    # (topic, partition) -> first offset read and next offset to commit
    first_offsets: dict[TopicPartition, int] = field(default_factory=dict)
    next_offsets: dict[TopicPartition, int] = field(default_factory=dict)

    def track(self, topic: str, partition: int, offset: int, size: int, now: float) -> None:
        """Account for one consumed message, valid or not."""
        if self.opened_at is None:
            self.opened_at = now
        key = (topic, partition)
        self.first_offsets.setdefault(key, offset)
        self.next_offsets[key] = offset + 1
        self.messages += 1
        self.payload_bytes += size

    @property
    def empty(self) -> bool:
        return self.messages == 0

    def dedup_token(self) -> str:
        """Names exactly the offset ranges in this batch: a retried insert of the same
        batch carries the same token, so ClickHouse drops the repeat."""
        ranges = ",".join(
            f"{topic}/{partition}/{self.first_offsets[(topic, partition)]}-{end}"
            for (topic, partition), end in sorted(self.next_offsets.items())
        )
        return hashlib.sha256(ranges.encode()).hexdigest()


@dataclass(frozen=True)
class BatchPolicy:
    max_rows: int
    max_bytes: int
    max_wait_s: float

    def full(self, batch: Batch) -> bool:
        return len(batch.rows) >= self.max_rows or batch.payload_bytes >= self.max_bytes

    def due(self, batch: Batch, now: float) -> bool:
        """Whether the batch should be written now (full, or open for max_wait_s)."""
        if batch.empty:
            return False
        if self.full(batch):
            return True
        assert batch.opened_at is not None
        return now - batch.opened_at >= self.max_wait_s

    def room(self, batch: Batch) -> int:
        return max(self.max_rows - len(batch.rows), 0)
