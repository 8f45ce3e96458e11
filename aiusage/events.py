"""The usage event contract, version 1: one event is one model call.

``UsageEvent`` is the single definition. The producer encodes it, the consumer
decodes and checks it, and ``deploy/schemas/usage-event.v1.json`` is generated from it
for producers in other languages (``aiusage events schema``).

Rules beyond the field types:

* ``timestamp`` carries an offset (naive timestamps are refused) and is at most a
  configurable margin in the future (checked by the consumer, which owns the clock);
* ``cached_tokens <= input_tokens``;
* ``cost_usd`` is a decimal string or a JSON number, >= 0, finite, with at most nine
  decimal places, below 10^9; it is read from its text and never passes through a float;
* unknown fields are ignored, so producers may add fields before consumers know them.
"""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

import msgspec

SCHEMA_VERSION = 1
MAX_COST = Decimal("999999999.999999999")
COST_DECIMALS = 9
MAX_TOKENS = 2**63 - 1
_ZERO = Decimal(0)
_NANO = Decimal(1).scaleb(-COST_DECIMALS)

EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
NO_CONTROL_CHARACTERS = r"^[^\x00-\x1f\x7f]*$"
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")

# Lengths are checked by msgspec in C; control characters in __post_init__, where a
# printable-ASCII fast path avoids a regular expression for almost every value.
OrganizationId = Annotated[str, msgspec.Meta(min_length=1, max_length=128)]
Name = Annotated[str, msgspec.Meta(min_length=1, max_length=256)]
OptionalName = Annotated[str, msgspec.Meta(max_length=256)]
Tokens = Annotated[int, msgspec.Meta(ge=0, le=MAX_TOKENS)]
AwareDatetime = Annotated[datetime, msgspec.Meta(tz=True)]


class UsageEvent(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """One model call, as published to the usage topic."""

    event_id: uuid.UUID
    timestamp: AwareDatetime
    organization_id: OrganizationId
    model: Name
    input_tokens: Tokens
    cached_tokens: Tokens
    output_tokens: Tokens
    cost_usd: Decimal
    provider: OptionalName | None = None
    feature: OptionalName | None = None
    user_id: OptionalName | None = None
    schema_version: Literal[1] = 1

    def __post_init__(self) -> None:
        # The hot path of the consumer: plain comparisons first, details only on failure.
        texts = (
            f"{self.organization_id}{self.model}{self.provider or ''}"
            f"{self.feature or ''}{self.user_id or ''}"
        )
        if not _plain(texts):
            raise ValueError(f"{self._first_unplain_field()} must not contain control characters")
        if self.timestamp < EARLIEST:
            raise ValueError("timestamp must not be before 1970-01-01T00:00:00Z")
        if self.cached_tokens > self.input_tokens:
            raise ValueError("cached_tokens must not exceed input_tokens")
        cost = self.cost_usd
        if not cost.is_finite():
            raise ValueError("cost_usd must be a finite number")
        if cost < _ZERO:
            raise ValueError("cost_usd must be >= 0")
        if cost > MAX_COST:
            raise ValueError(f"cost_usd must be at most {MAX_COST}")
        if cost.quantize(_NANO) != cost:
            raise ValueError(f"cost_usd has more than {COST_DECIMALS} decimal places")

    def _first_unplain_field(self) -> str:
        for name in ("organization_id", "model", "provider", "feature", "user_id"):
            value = getattr(self, name)
            if value is not None and not _plain(value):
                return name
        return "a text field"

    @property
    def cache_hit_rate(self) -> float:
        """cached_tokens / input_tokens, or 0 when there were no input tokens."""
        return self.cached_tokens / self.input_tokens if self.input_tokens else 0.0


def _plain(value: str) -> bool:
    if value.isascii():
        return value.isprintable()
    return _CONTROL.search(value) is None


_decoder = msgspec.json.Decoder(UsageEvent)
_encoder = msgspec.json.Encoder(decimal_format="string")


def decode_event(payload: bytes | str) -> UsageEvent:
    """Decode and check one event; raises ``msgspec.ValidationError`` or ``DecodeError``."""
    return _decoder.decode(payload)


def encode_event(event: UsageEvent) -> bytes:
    return _encoder.encode(event)


def event_from_fields(**fields: Any) -> UsageEvent:
    """Build and check an event from Python values (a UUID is generated when absent)."""
    fields.setdefault("event_id", uuid.uuid4())
    return msgspec.convert(fields, UsageEvent, strict=False)


_COST_PATTERN = r"^(0|[1-9][0-9]{0,8})(\.[0-9]{1,9})?$"


def json_schema() -> dict[str, Any]:
    """The JSON Schema (2020-12) of version 1, generated from ``UsageEvent``.

    msgspec describes the field types; the rules it cannot express as types (the cost's
    two encodings and its bounds, cached <= input) are added here.
    """
    generated = msgspec.json.schema(UsageEvent)
    body: dict[str, Any] = generated["$defs"]["UsageEvent"]
    properties = body["properties"]
    properties["cost_usd"] = {
        "description": "USD, >= 0, at most nine decimal places; a string keeps it exact",
        "anyOf": [
            {"type": "string", "pattern": _COST_PATTERN},
            {"type": "number", "minimum": 0, "exclusiveMaximum": 1_000_000_000},
        ],
    }
    for name in ("organization_id", "model", "provider", "feature", "user_id"):
        for variant in properties[name].get("anyOf", [properties[name]]):
            if variant.get("type") == "string":
                variant["pattern"] = NO_CONTROL_CHARACTERS
    properties["cached_tokens"]["description"] = "must not exceed input_tokens"
    properties["timestamp"]["description"] = "RFC 3339 with an offset (Z or +hh:mm)"
    properties["event_id"]["description"] = "the idempotency key"
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://aiusage.dev/schemas/usage-event.v1.json",
        "title": "aiusage usage event, version 1",
        "description": "One model call. Unknown fields are ignored.",
        "type": "object",
        "properties": properties,
        "required": body["required"],
    }
