"""Settings of ``aiusage aggregate`` (``AIUSAGE_AGGREGATOR_*``)."""

from __future__ import annotations

from croniter import croniter
from pydantic import Field, field_validator
from pydantic_settings import BaseSettings

from aiusage.settings import settings_config


class AggregatorSettings(BaseSettings):
    model_config = settings_config("AIUSAGE_AGGREGATOR_")

    schedule: str = Field(
        "0 1 * * *", description="cron expression, evaluated in UTC; each run ends at yesterday"
    )
    backfill_max_days: int = Field(
        400, ge=1, le=36_500, description="how far back a first start or catch-up goes"
    )
    ingest_settle_s: float = Field(
        300.0,
        ge=0,
        description="rows ingested this long before a run's snapshot keep their day dirty "
        "(an insert may take that long to become visible)",
    )

    @field_validator("schedule")
    @classmethod
    def _cron(cls, value: str) -> str:
        if not croniter.is_valid(value):
            raise ValueError(f"{value!r} is not a valid cron expression")
        return value
