from __future__ import annotations

from datetime import UTC, datetime

import pytest

from aggregator.daemon import next_fire
from aggregator.settings import AggregatorSettings
from aiusage.errors import ConfigError
from aiusage.settings import load


def _at(*parts: int) -> float:
    return datetime(*parts, tzinfo=UTC).timestamp()


def test_default_schedule_is_one_am_utc_daily() -> None:
    schedule = AggregatorSettings().schedule
    assert next_fire(schedule, _at(2026, 3, 10, 0, 59, 59)) == _at(2026, 3, 10, 1, 0)
    assert next_fire(schedule, _at(2026, 3, 10, 1, 0)) == _at(2026, 3, 11, 1, 0)
    assert next_fire(schedule, _at(2026, 12, 31, 23, 0)) == _at(2027, 1, 1, 1, 0)


def test_schedule_is_evaluated_in_utc_across_daylight_saving_dates() -> None:
    # 2026-03-29 is a DST change in Europe: UTC has none, the run stays at 01:00 UTC.
    assert next_fire("0 1 * * *", _at(2026, 3, 28, 2, 0)) == _at(2026, 3, 29, 1, 0)


def test_a_bad_cron_expression_is_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIUSAGE_AGGREGATOR_SCHEDULE", "every night")
    with pytest.raises(ConfigError, match=r"^AIUSAGE_AGGREGATOR_SCHEDULE: .*not a valid cron"):
        load(AggregatorSettings)
