"""Which parts of a range come from the rollup and which from the raw log: pure functions.

A range longer than the threshold reads the rollup for every whole UTC day inside it
that is aggregated and clean for the organization; everything else (partial days at
either edge, days not aggregated yet, days with late rows pending) reads the raw log.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

DAY = timedelta(days=1)


@dataclass(frozen=True)
class Plan:
    rollup_days: tuple[date, ...]
    raw_ranges: tuple[tuple[datetime, datetime], ...]

    @property
    def route(self) -> str:
        if not self.rollup_days:
            return "raw"
        return "rollup" if not self.raw_ranges else "hybrid"


def midnight(day: date) -> datetime:
    return datetime.combine(day, time(0), UTC)


def whole_days(start: datetime, end: datetime) -> tuple[date, date]:
    """The whole UTC days inside [start, end), as [first, stop)."""
    first = start.date() if start == midnight(start.date()) else start.date() + DAY
    stop = end.date()
    return first, max(first, stop)


def is_long(start: datetime, end: datetime, threshold_days: float) -> bool:
    return end - start > timedelta(days=threshold_days)


def plan(start: datetime, end: datetime, threshold_days: float, clean_days: Iterable[date]) -> Plan:
    """Split [start, end) into rollup days and raw ranges (merged, in order)."""
    if not is_long(start, end, threshold_days):
        return Plan((), ((start, end),))
    first, stop = whole_days(start, end)
    clean = sorted(d for d in set(clean_days) if first <= d < stop)
    ranges: list[tuple[datetime, datetime]] = []
    cursor = start
    for day in clean:
        if midnight(day) > cursor:
            ranges.append((cursor, midnight(day)))
        cursor = midnight(day) + DAY
    if cursor < end:
        ranges.append((cursor, end))
    return Plan(tuple(clean), tuple(ranges))
