"""Settings of ``aiusage consume`` (``AIUSAGE_CONSUMER_*``)."""

from __future__ import annotations

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings

from aiusage.settings import settings_config


class ConsumerSettings(BaseSettings):
    model_config = settings_config("AIUSAGE_CONSUMER_")

    batch_max_rows: int = Field(50_000, ge=1, le=1_000_000)
    batch_max_bytes: int = Field(32 * 1024 * 1024, ge=1024, le=1024 * 1024 * 1024)
    batch_max_wait_s: float = Field(1.0, gt=0, le=300)
    max_event_bytes: int = Field(64 * 1024, ge=256, le=16 * 1024 * 1024)
    max_future_s: float = Field(86_400.0, ge=0, description="how far ahead a timestamp may be")
    dlq_max_consecutive: int = Field(
        1_000, ge=1, description="this many invalid events in a row stop the consumer"
    )
    dlq_max_ratio: float = Field(
        0.5, gt=0, le=1, description="more invalid events than this share of a window stop it"
    )
    dlq_ratio_window: int = Field(10_000, ge=10, description="events the ratio is measured over")
    backoff_initial_s: float = Field(0.5, gt=0, le=60)
    backoff_max_s: float = Field(30.0, gt=0, le=600)
    stall_after_s: float = Field(
        300.0, gt=0, description="/healthz fails when no batch could be written for this long"
    )
    shutdown_timeout_s: float = Field(30.0, gt=0, le=600)
    poll_timeout_s: float = Field(0.2, gt=0, le=10)
    session_timeout_ms: int = Field(45_000, ge=1_000, le=3_600_000)
    group_instance_id: str | None = Field(
        None,
        description="static group membership: a restarted consumer with the same id gets its "
        "partitions back without a rebalance (one id per consumer process)",
    )
    statistics_interval_ms: int = Field(5_000, ge=0, description="librdkafka stats (lag); 0 off")

    @model_validator(mode="after")
    def _backoff_order(self) -> ConsumerSettings:
        if self.backoff_max_s < self.backoff_initial_s:
            raise ValueError("backoff_max_s must be at least backoff_initial_s")
        return self
