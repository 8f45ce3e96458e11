"""A batch of rows with the offsets it covers, and the policy that says when to flush.

Offsets travel with the data: a batch knows, for each partition it read, the next
offset to commit once its rows (and its dead-lettered messages) are safely stored.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from consumer.processing import Row


@dataclass
class Batch:
    """Rows of one topic, with the offsets they cover.

    The loop records, per partition, the first offset it read and the last one, for
    valid and dead-lettered messages alike; the batch's commit is ``last + 1``.
    """

    topic: str
    rows: list[Row] = field(default_factory=list)
    payload_bytes: int = 0
    messages: int = 0
    opened_at: float | None = None
    first_offsets: dict[int, int] = field(default_factory=dict)
    last_offsets: dict[int, int] = field(default_factory=dict)

    @property
    def empty(self) -> bool:
        return self.messages == 0

    def next_offsets(self) -> dict[int, int]:
        """The offsets to commit once the batch is stored: one past the last read."""
        return {partition: last + 1 for partition, last in self.last_offsets.items()}

    def dedup_token(self) -> str:
        """Names exactly the offset ranges in this batch: a retried insert of the same
        batch carries the same token, so ClickHouse drops the repeat."""
        ranges = ",".join(
            f"{self.topic}/{partition}/{self.first_offsets[partition]}-{last}"
            for partition, last in sorted(self.last_offsets.items())
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
