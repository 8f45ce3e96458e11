"""The event contract over a valid and an invalid corpus, and its published schema."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import msgspec
import pytest

from aiusage.commands.events_cmd import SCHEMA_PATH, render_schema
from aiusage.events import UsageEvent, decode_event, encode_event, event_from_fields

REPO = Path(__file__).resolve().parents[2]


def _fields(**overrides: Any) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "event_id": "0b0f6a5e-6d0e-4c57-9d1c-1f5b3c7e9a01",
        "timestamp": "2026-03-01T12:30:00.250+02:00",
        "organization_id": "org-acme",
        "model": "gpt-4o",
        "provider": "openai",
        "feature": "chat",
        "user_id": "u-1",
        "input_tokens": 1200,
        "cached_tokens": 200,
        "output_tokens": 300,
        "cost_usd": "0.004512345",
        "schema_version": 1,
    }
    fields.update(overrides)
    return {k: v for k, v in fields.items() if v is not _DROP}


_DROP = object()


def _decode(fields: dict[str, Any]) -> UsageEvent:
    return decode_event(json.dumps(fields).encode())


VALID = [
    pytest.param(_fields(), id="complete"),
    pytest.param(
        _fields(provider=_DROP, feature=_DROP, user_id=_DROP, schema_version=_DROP), id="minimal"
    ),
    pytest.param(_fields(provider=None, feature=None), id="explicit nulls"),
    pytest.param(_fields(timestamp="2026-03-01T10:30:00Z"), id="zulu"),
    pytest.param(_fields(cost_usd=0.1), id="cost as a JSON number"),
    pytest.param(_fields(cost_usd=0), id="free call"),
    pytest.param(_fields(cost_usd="999999999.999999999"), id="largest cost"),
    pytest.param(_fields(cost_usd="1.5000000000"), id="trailing zeros past nine places"),
    pytest.param(_fields(input_tokens=0, cached_tokens=0), id="no input tokens"),
    pytest.param(_fields(cached_tokens=1200), id="fully cached"),
    pytest.param(_fields(organization_id="o" * 128), id="longest organization"),
    pytest.param(_fields(organization_id="Société Générale ✓"), id="unicode organization"),
    pytest.param(_fields(new_field_from_the_future={"x": 1}), id="unknown field ignored"),
]


@pytest.mark.parametrize("fields", VALID)
def test_valid_corpus(fields: dict[str, Any]) -> None:
    event = _decode(fields)
    assert event.timestamp.tzinfo is not None
    assert isinstance(event.cost_usd, Decimal)


INVALID = [
    pytest.param(_fields(event_id=_DROP), "missing required field `event_id`", id="no event id"),
    pytest.param(_fields(event_id="42"), "Invalid UUID", id="bad uuid"),
    pytest.param(_fields(timestamp="2026-03-01T12:30:00"), "timezone", id="naive timestamp"),
    pytest.param(_fields(timestamp="yesterday"), "datetime", id="unparseable timestamp"),
    pytest.param(_fields(timestamp="1969-12-31T23:59:59Z"), "before 1970", id="before 1970"),
    pytest.param(_fields(organization_id=""), "length >= 1", id="empty organization"),
    pytest.param(_fields(organization_id="o" * 129), "length <= 128", id="organization too long"),
    pytest.param(_fields(organization_id="org\n1"), "control characters", id="control char"),
    pytest.param(_fields(user_id="u\x00"), "user_id must not contain", id="nul in user id"),
    pytest.param(_fields(model=""), "length >= 1", id="empty model"),
    pytest.param(_fields(model=_DROP), "missing required field `model`", id="no model"),
    pytest.param(_fields(input_tokens=-1), ">= 0", id="negative tokens"),
    pytest.param(_fields(input_tokens="12"), "Expected `int`, got `str`", id="tokens as string"),
    pytest.param(_fields(input_tokens=1.5), "Expected `int`, got `float`", id="fractional tokens"),
    pytest.param(_fields(output_tokens=True), "Expected `int`, got `bool`", id="boolean tokens"),
    pytest.param(_fields(cached_tokens=1201), "must not exceed input_tokens", id="cached > input"),
    pytest.param(_fields(cost_usd="-0.01"), ">= 0", id="negative cost"),
    pytest.param(_fields(cost_usd="0.0000000001"), "more than 9 decimal places", id="ten decimals"),
    pytest.param(
        _fields(cost_usd=1e-10), "more than 9 decimal places", id="ten decimals as number"
    ),
    pytest.param(_fields(cost_usd="1000000000"), "at most", id="cost too large"),
    pytest.param(_fields(cost_usd="NaN"), "finite", id="NaN cost"),
    pytest.param(_fields(cost_usd="Infinity"), "finite", id="infinite cost"),
    pytest.param(_fields(cost_usd="ten"), "decimal", id="cost not a number"),
    pytest.param(_fields(cost_usd=True), "Expected `decimal`, got `bool`", id="boolean cost"),
    pytest.param(_fields(schema_version=2), "Invalid enum value 2", id="future schema version"),
]


@pytest.mark.parametrize(("fields", "message"), INVALID)
def test_invalid_corpus(fields: dict[str, Any], message: str) -> None:
    with pytest.raises(msgspec.ValidationError, match=message.replace("(", r"\(")):
        _decode(fields)


def test_cost_never_passes_through_a_float() -> None:
    # As a binary float this number would read back as 123456789.12345679.
    raw = json.dumps(_fields(cost_usd="PLACEHOLDER")).replace(
        '"PLACEHOLDER"', "123456789.123456789"
    )
    assert decode_event(raw.encode()).cost_usd == Decimal("123456789.123456789")


def test_encode_decode_round_trip_keeps_the_instant_and_the_cost() -> None:
    event = event_from_fields(
        timestamp=datetime(2026, 3, 1, 12, 0, tzinfo=timezone(timedelta(hours=-5))),
        organization_id="org-1",
        model="m",
        input_tokens=10,
        cached_tokens=5,
        output_tokens=1,
        cost_usd=Decimal("0.000000001"),
    )
    again = decode_event(encode_event(event))
    assert again == event
    assert again.timestamp.astimezone(UTC) == datetime(2026, 3, 1, 17, 0, tzinfo=UTC)
    assert isinstance(event.event_id, uuid.UUID)


def test_cache_hit_rate_definition() -> None:
    assert _decode(_fields(input_tokens=200, cached_tokens=50)).cache_hit_rate == 0.25
    assert _decode(_fields(input_tokens=0, cached_tokens=0)).cache_hit_rate == 0.0


def test_published_schema_is_generated_from_the_model() -> None:
    published = (REPO / SCHEMA_PATH).read_text()
    assert published == render_schema(), "run: aiusage events schema --write " + str(SCHEMA_PATH)
    schema = json.loads(published)
    model_fields = set(UsageEvent.__struct_fields__)
    assert set(schema["properties"]) == model_fields
    assert set(schema["required"]) == {
        name
        for name in model_fields
        if name not in ("provider", "feature", "user_id", "schema_version")
    }
    assert schema["properties"]["schema_version"]["enum"] == [1]
