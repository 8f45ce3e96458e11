"""Settings of the query layer (``AIUSAGE_QUERY_*``)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings

from aiusage.settings import settings_config


class QuerySettings(BaseSettings):
    model_config = settings_config("AIUSAGE_QUERY_")

    rollup_threshold_days: float = Field(
        7.0, gt=0, description="ranges longer than this read whole clean days from the rollup"
    )
    max_range_days: int = Field(3660, ge=1, description="longest range a request may ask for")
    host: str = "127.0.0.1"
    port: int = Field(8080, ge=1, le=65535, description="the HTTP API's port")
    tokens: dict[str, list[str]] = Field(
        default_factory=dict,
        description="bearer tokens and the organizations each may read, as JSON: "
        '{"token": ["org-a", "org-b"]}, or ["*"] for all; empty: no authentication',
    )

    def secrets(self) -> list[str]:
        return list(self.tokens)
