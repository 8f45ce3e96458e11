"""``aiusage settings``: show the effective settings, secrets masked."""

from __future__ import annotations

import argparse
import json
from typing import Any

from pydantic import SecretStr
from pydantic_settings import BaseSettings

from aggregator.settings import AggregatorSettings
from aiusage.errors import ConfigError
from aiusage.settings import ClickHouseSettings, KafkaSettings, LogSettings, MetricsSettings, load
from consumer.settings import ConsumerSettings
from query.settings import QuerySettings

SETTINGS_CLASSES: tuple[type[BaseSettings], ...] = (
    KafkaSettings,
    ClickHouseSettings,
    MetricsSettings,
    LogSettings,
    ConsumerSettings,
    AggregatorSettings,
    QuerySettings,
)


def register(commands: Any) -> None:
    parser = commands.add_parser(
        "settings",
        help="print the effective settings (secrets masked) and check them",
        description="Read every AIUSAGE_* setting from the environment and .env, "
        "check it, and print the result as JSON with secrets masked.",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    print(json.dumps(effective_settings(), indent=2, sort_keys=True))
    return 0


def effective_settings() -> dict[str, Any]:
    """Every setting by its environment name; all invalid fields are reported together."""
    out: dict[str, Any] = {}
    problems: list[str] = []
    for cls in SETTINGS_CLASSES:
        try:
            settings = load(cls)
        except ConfigError as err:
            problems.append(str(err))
            continue
        prefix = str(cls.model_config.get("env_prefix", ""))
        for field in type(settings).model_fields:
            value = getattr(settings, field)
            out[f"{prefix}{field.upper()}"] = _shown(settings, field, value)
    if problems:
        raise ConfigError("\n".join(problems))
    return out


def _shown(settings: BaseSettings, field: str, value: Any) -> Any:
    if isinstance(settings, ClickHouseSettings) and field == "dsn":
        return settings.target().display
    if isinstance(settings, QuerySettings) and field == "tokens":
        return f"{len(value)} token(s)"
    if isinstance(value, SecretStr):
        return "***" if value.get_secret_value() else ""
    return value
