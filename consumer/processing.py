"""Bytes to a raw-log row: a pure function, no I/O.

``process_message`` either returns the row for ``ai_usage_log`` or raises
``InvalidMessage`` with a kind and a reason. It is the only place where event errors
are converted.

A row is one line of JSONCompactEachRow, the columns of ``ROW_COLUMNS`` encoded by
msgspec: ClickHouse parses it outside the GIL, and a batch of bytes objects costs the
garbage collector nothing, where a batch of tuples would be scanned again and again.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

import msgspec

from aiusage.events import UsageEvent, decode_event

ErrorKind = Literal["empty", "oversized", "not_json", "missing_field", "wrong_type", "constraint"]
ERROR_KINDS: tuple[ErrorKind, ...] = (
    "empty",
    "oversized",
    "not_json",
    "missing_field",
    "wrong_type",
    "constraint",
)

# The raw log's columns in the order rows carry them (ingested_at is the table's default).
ROW_COLUMNS = (
    "event_id",
    "timestamp",
    "organization_id",
    "model",
    "provider",
    "feature",
    "user_id",
    "input_tokens",
    "cached_tokens",
    "output_tokens",
    "cost_usd",
    "kafka_topic",
    "kafka_partition",
    "kafka_offset",
)

Row = bytes

_encode = msgspec.json.Encoder(decimal_format="number").encode


class InvalidMessage(Exception):
    """An event that can never be written: it goes to the dead-letter topic."""

    def __init__(self, kind: ErrorKind, reason: str) -> None:
        super().__init__(f"{kind}: {reason}")
        self.kind: ErrorKind = kind
        self.reason = reason


@dataclass(frozen=True)
class Limits:
    max_event_bytes: int
    max_future: timedelta


def process_message(
    payload: bytes | None, topic: str, partition: int, offset: int, limits: Limits, now: datetime
) -> Row:
    """Validate one message and return its raw-log row, or raise InvalidMessage."""
    if not payload:
        raise InvalidMessage("empty", "the message has no value")
    if len(payload) > limits.max_event_bytes:
        raise InvalidMessage(
            "oversized", f"{len(payload)} bytes, more than the limit of {limits.max_event_bytes}"
        )
    try:
        event = decode_event(payload)
    except msgspec.ValidationError as err:
        raise InvalidMessage(_classify(str(err)), str(err)) from err
    except msgspec.DecodeError as err:
        raise InvalidMessage("not_json", str(err)) from err
    if event.timestamp > now + limits.max_future:
        raise InvalidMessage(
            "constraint",
            f"timestamp {event.timestamp.isoformat()} is more than "
            f"{limits.max_future} ahead of the consumer's clock",
        )
    return to_row(event, topic, partition, offset)


def to_row(event: UsageEvent, topic: str, partition: int, offset: int) -> Row:
    return _encode(
        (
            event.event_id,
            event.timestamp,
            event.organization_id,
            event.model,
            event.provider or "",
            event.feature or "",
            event.user_id or "",
            event.input_tokens,
            event.cached_tokens,
            event.output_tokens,
            event.cost_usd,
            topic,
            partition,
            offset,
        )
    )


def _classify(message: str) -> ErrorKind:
    if message.startswith("Object missing required field"):
        return "missing_field"
    if message.startswith("Expected `") and "`, got `" in message:
        return "wrong_type"
    return "constraint"


def utc_now(epoch_seconds: float) -> datetime:
    return datetime.fromtimestamp(epoch_seconds, UTC)
