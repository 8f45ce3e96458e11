from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

import pytest

from query.api import BadRequest, normalize_bound, validate
from query.routing import plan, whole_days
from query.settings import QuerySettings


def _at(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)


def test_short_ranges_read_the_raw_log_only() -> None:
    start, end = _at(2026, 3, 1), _at(2026, 3, 8)  # exactly 7 days: not longer
    result = plan(start, end, 7, {date(2026, 3, d) for d in range(1, 8)})
    assert result.route == "raw"
    assert result.raw_ranges == ((start, end),)


def test_long_ranges_read_clean_whole_days_from_the_rollup_and_the_rest_raw() -> None:
    start, end = _at(2026, 3, 1, 6), _at(2026, 3, 20, 12)
    clean = {date(2026, 3, d) for d in range(1, 21)} - {date(2026, 3, 10)}
    result = plan(start, end, 7, clean)
    assert result.route == "hybrid"
    # 03-01 and 03-20 are partial: raw. 03-10 is dirty: raw.
    assert result.rollup_days == tuple(date(2026, 3, d) for d in range(2, 20) if d != 10)
    assert result.raw_ranges == (
        (start, _at(2026, 3, 2)),
        (_at(2026, 3, 10), _at(2026, 3, 11)),
        (_at(2026, 3, 20), end),
    )


def test_a_range_of_whole_clean_days_is_all_rollup() -> None:
    start, end = _at(2026, 3, 1), _at(2026, 3, 31)
    result = plan(start, end, 7, {start.date() + timedelta(days=n) for n in range(40)})
    assert result.route == "rollup"
    assert len(result.rollup_days) == 30
    assert result.raw_ranges == ()


def test_no_clean_days_means_raw_even_for_long_ranges() -> None:
    result = plan(_at(2026, 3, 1), _at(2026, 4, 1), 7, set())
    assert result.route == "raw"


def test_whole_days_of_a_range() -> None:
    assert whole_days(_at(2026, 3, 1), _at(2026, 3, 3)) == (date(2026, 3, 1), date(2026, 3, 3))
    assert whole_days(_at(2026, 3, 1, 0, 0, 1), _at(2026, 3, 2, 23)) == (
        date(2026, 3, 2),
        date(2026, 3, 2),
    )


def test_bounds_dates_offsets_and_sub_millisecond_precision() -> None:
    assert normalize_bound(date(2026, 3, 1), "start") == _at(2026, 3, 1)
    plus_two = datetime(2026, 3, 1, 2, 0, tzinfo=timezone(timedelta(hours=2)))
    assert normalize_bound(plus_two, "start") == _at(2026, 3, 1)
    assert normalize_bound(_at(2026, 3, 1, 0, 0, 0) + timedelta(microseconds=1), "s") == _at(
        2026, 3, 1
    ) + timedelta(milliseconds=1)
    with pytest.raises(BadRequest, match="start must carry a time zone"):
        normalize_bound(datetime(2026, 3, 1), "start")


@pytest.mark.parametrize(
    ("org", "start", "end", "message"),
    [
        ("", date(2026, 3, 1), date(2026, 3, 2), "1 to 128 characters"),
        ("o\n", date(2026, 3, 1), date(2026, 3, 2), "control characters"),
        ("org", date(2026, 3, 2), date(2026, 3, 1), "must be after start"),
        ("org", date(2026, 3, 1), date(2026, 3, 1), "must be after start"),
        ("org", date(2000, 1, 1), date(2026, 1, 1), "longer than 3660 days"),
    ],
)
def test_bad_requests_say_what_is_wrong(org: str, start: date, end: date, message: str) -> None:
    with pytest.raises(BadRequest, match=message):
        validate(org, start, end, QuerySettings())
