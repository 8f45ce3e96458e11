"""The ordered list of schema versions.

A migration is never edited once released: a change to the schema is a new
version appended here. Each statement must be idempotent (``IF NOT EXISTS``,
``ADD COLUMN IF NOT EXISTS``...), because two services may start at once.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from aiusage.schema import ddl
from aiusage.schema.ddl import SchemaContext


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    statements: Callable[[SchemaContext], Sequence[str]]


MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "raw usage log", lambda ctx: [ddl.create_raw_log(ctx)]),
    Migration(2, "daily aggregates", lambda ctx: [ddl.create_daily_aggregates(ctx)]),
    Migration(3, "aggregation run log", lambda ctx: [ddl.create_aggregation_runs(ctx)]),
    Migration(
        4,
        "touched days",
        lambda ctx: [ddl.create_touched_days(ctx), ddl.create_touched_days_view(ctx)],
    ),
    Migration(
        5,
        "BI views",
        lambda ctx: [
            ddl.create_view_daily(ctx),
            ddl.create_view_log(ctx),
            ddl.create_view_org_daily(ctx),
        ],
    ),
)


def latest_version(migrations: Sequence[Migration] = MIGRATIONS) -> int:
    return max((m.version for m in migrations), default=0)


def check_order(migrations: Sequence[Migration] = MIGRATIONS) -> None:
    """Versions are 1, 2, 3... with no gap or repeat."""
    versions = [m.version for m in migrations]
    if versions != list(range(1, len(versions) + 1)):
        raise ValueError(f"migration versions must be 1..N in order, got {versions}")
