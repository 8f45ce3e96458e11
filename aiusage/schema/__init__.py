"""The ClickHouse schema owned by aiusage: DDL, versioned migrations and their applier."""

from __future__ import annotations

from aiusage.schema.apply import MigrationResult, migrate, plan
from aiusage.schema.ddl import DAILY_AGGREGATES, RAW_LOG, SchemaContext
from aiusage.settings import ClickHouseSettings

__all__ = [
    "DAILY_AGGREGATES",
    "RAW_LOG",
    "MigrationResult",
    "SchemaContext",
    "context_for",
    "migrate",
    "plan",
]


def context_for(settings: ClickHouseSettings) -> SchemaContext:
    return SchemaContext(
        database=settings.database_name,
        cluster=settings.cluster,
        log_ttl_days=settings.log_ttl_days,
    )
