"""A synthetic, seeded workload of usage events, with its expected totals.

The totals are computed here, from the generated values, with Decimal sums: checks
compare the pipeline's output against them and never against the code under test.
"""

from __future__ import annotations

import json
import random
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from aiusage.events import UsageEvent, encode_event

# (model, provider, USD per 1M input, cached input and output tokens)
MODELS = (
    ("gpt-4o", "openai", Decimal("2.50"), Decimal("1.25"), Decimal("10.00")),
    ("gpt-4o-mini", "openai", Decimal("0.15"), Decimal("0.075"), Decimal("0.60")),
    ("claude-sonnet", "anthropic", Decimal("3.00"), Decimal("0.30"), Decimal("15.00")),
    ("claude-haiku", "anthropic", Decimal("0.80"), Decimal("0.08"), Decimal("4.00")),
    ("gemini-flash", "google", Decimal("0.10"), Decimal("0.025"), Decimal("0.40")),
)
FEATURES = ("chat", "summarize", "classify", "extract", "draft-email", "search")
INVALID_KINDS = (
    "not_json",
    "wrong_type",
    "missing_field",
    "negative_tokens",
    "cached_over_input",
    "naive_timestamp",
    "too_precise_cost",
)
NANO = Decimal("0.000000001")
MILLION = Decimal(1_000_000)


@dataclass(frozen=True)
class Workload:
    events: int
    organizations: int
    days: int
    seed: int = 1
    invalid_fraction: float = 0.0
    duplicate_fraction: float = 0.0
    end: datetime = field(default_factory=lambda: datetime.now(UTC))

    def __post_init__(self) -> None:
        if self.events < 0 or self.organizations < 1 or self.days < 1:
            raise ValueError("events >= 0, organizations >= 1 and days >= 1 are required")
        for name in ("invalid_fraction", "duplicate_fraction"):
            if not 0 <= getattr(self, name) < 1:
                raise ValueError(f"{name} must be in [0, 1)")
        if self.end.tzinfo is None:
            raise ValueError("end must carry a time zone")


@dataclass(frozen=True)
class Message:
    payload: bytes
    key: bytes
    event_id: uuid.UUID | None
    kind: str  # "valid", "duplicate" or an invalid kind


class LoadGenerator:
    """Iterate to get the messages; ``expected()`` afterwards gives what must be stored."""

    def __init__(self, workload: Workload) -> None:
        self.workload = workload
        self._rng = random.Random(workload.seed)
        self._orgs = [f"org-{i:04d}" for i in range(1, workload.organizations + 1)]
        # A long tail: the first organizations carry most of the traffic.
        self._weights = [1 / (rank**1.1) for rank in range(1, workload.organizations + 1)]
        self._totals: dict[str, dict[str, dict[str, Any]]] = {}
        self._invalid: dict[str, int] = {}
        self._duplicates = 0
        self._sent: list[Message] = []

    def __iter__(self) -> Iterator[Message]:
        rng, w = self._rng, self.workload
        start = w.end - timedelta(days=w.days)
        span_ms = int((w.end - start).total_seconds() * 1000)
        for _ in range(w.events):
            roll = rng.random()
            if roll < w.invalid_fraction:
                yield self._invalid_message(start, span_ms)
                continue
            if self._sent and roll < w.invalid_fraction + w.duplicate_fraction:
                original = rng.choice(self._sent)
                self._duplicates += 1
                yield Message(original.payload, original.key, original.event_id, "duplicate")
                continue
            event = self._event(start, span_ms)
            self._count(event)
            message = Message(
                encode_event(event), event.organization_id.encode(), event.event_id, "valid"
            )
            if len(self._sent) < 100_000:
                self._sent.append(message)
            else:
                self._sent[rng.randrange(len(self._sent))] = message
            yield message

    def _event(self, start: datetime, span_ms: int) -> UsageEvent:
        rng = self._rng
        model, provider, price_in, price_cached, price_out = rng.choice(MODELS)
        input_tokens = int(rng.lognormvariate(6.5, 1.0))
        cached_tokens = 0 if rng.random() < 0.4 else rng.randint(0, input_tokens)
        output_tokens = int(rng.lognormvariate(5.0, 0.9))
        cost = (
            (input_tokens - cached_tokens) * price_in
            + cached_tokens * price_cached
            + output_tokens * price_out
        ) / MILLION
        return UsageEvent(
            event_id=uuid.UUID(int=rng.getrandbits(128), version=4),
            timestamp=start + timedelta(milliseconds=rng.randrange(span_ms)),
            organization_id=rng.choices(self._orgs, self._weights)[0],
            model=model,
            provider=provider,
            feature=rng.choice(FEATURES),
            user_id=f"user-{rng.randrange(500):03d}",
            input_tokens=input_tokens,
            cached_tokens=cached_tokens,
            output_tokens=output_tokens,
            cost_usd=cost.quantize(NANO),
        )

    def _invalid_message(self, start: datetime, span_ms: int) -> Message:
        kind = self._rng.choice(INVALID_KINDS)
        self._invalid[kind] = self._invalid.get(kind, 0) + 1
        base = self._event(start, span_ms)
        fields: dict[str, Any] = {
            "event_id": str(base.event_id),
            "timestamp": base.timestamp.isoformat(),
            "organization_id": base.organization_id,
            "model": base.model,
            "input_tokens": base.input_tokens,
            "cached_tokens": base.cached_tokens,
            "output_tokens": base.output_tokens,
            "cost_usd": str(base.cost_usd),
        }
        if kind == "not_json":
            return Message(b"{not json" + str(fields).encode(), b"broken", None, kind)
        if kind == "wrong_type":
            fields["input_tokens"] = str(fields["input_tokens"])
        elif kind == "missing_field":
            del fields["model"]
        elif kind == "negative_tokens":
            fields["output_tokens"] = -1
        elif kind == "cached_over_input":
            fields["cached_tokens"] = fields["input_tokens"] + 1
        elif kind == "naive_timestamp":
            fields["timestamp"] = base.timestamp.replace(tzinfo=None).isoformat()
        elif kind == "too_precise_cost":
            fields["cost_usd"] = "0.0000000001"
        payload = json.dumps(fields).encode()
        return Message(payload, base.organization_id.encode(), None, kind)

    def _count(self, event: UsageEvent) -> None:
        day = event.timestamp.astimezone(UTC).date().isoformat()
        org = self._totals.setdefault(event.organization_id, {})
        totals = org.setdefault(
            day,
            {
                "calls": 0,
                "cost": Decimal(0),
                "input_tokens": 0,
                "cached_tokens": 0,
                "output_tokens": 0,
                "cache_hit_rate_sum": 0.0,
            },
        )
        totals["calls"] += 1
        totals["cost"] += event.cost_usd
        totals["input_tokens"] += event.input_tokens
        totals["cached_tokens"] += event.cached_tokens
        totals["output_tokens"] += event.output_tokens
        totals["cache_hit_rate_sum"] += event.cache_hit_rate

    def expected(self) -> dict[str, Any]:
        """What the raw log must hold once every message is consumed (JSON-ready)."""
        totals = {
            org: {day: {**values, "cost": str(values["cost"])} for day, values in days.items()}
            for org, days in sorted(self._totals.items())
        }
        unique = sum(v["calls"] for days in self._totals.values() for v in days.values())
        return {
            "seed": self.workload.seed,
            "end": self.workload.end.isoformat(),
            "unique_events": unique,
            "duplicates": self._duplicates,
            "invalid": dict(sorted(self._invalid.items())),
            "totals": totals,
        }
