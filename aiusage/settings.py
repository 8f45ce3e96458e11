"""Settings shared by every aiusage service.

Each class reads its own environment prefix (and a ``.env`` file in the working
directory). Services build them once in ``main()`` with :func:`load` and pass them down.
"""

from __future__ import annotations

import dataclasses
import logging
import re
from typing import Any, Literal, TypeVar

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict, SettingsError

from aiusage.dsn import ClickHouseTarget, default_dsn, parse_dsn, validate_identifier
from aiusage.errors import ConfigError

_TOPIC = re.compile(r"^[A-Za-z0-9._-]{1,245}$")
_CLUSTER = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")

DEFAULT_DATABASE = "aiusage"

# A librdkafka configuration, as confluent-kafka's clients take it (values are strings,
# numbers, booleans, and callables or a logger for the client's hooks).
KafkaConfig = dict[str, Any]
# librdkafka's own log lines, routed into ours instead of straight to stderr.
LIBRDKAFKA_LOGGER = logging.getLogger("aiusage.librdkafka")


def settings_config(prefix: str) -> SettingsConfigDict:
    """The configuration every aiusage settings class shares: env prefix, .env, frozen."""
    return SettingsConfigDict(
        env_prefix=prefix,
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        frozen=True,
    )


class KafkaSettings(BaseSettings):
    """Where the usage topic lives and how to reach it (``AIUSAGE_KAFKA_*``)."""

    model_config = settings_config("AIUSAGE_KAFKA_")

    bootstrap_servers: str = "127.0.0.1:9092"
    topic: str = "ai-usage-events"
    group_id: str = "aiusage-consumer"
    partitions: int = Field(6, ge=1, le=10_000)
    replication_factor: int = Field(1, ge=1, le=32)
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    sasl_mechanism: (
        Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512", "OAUTHBEARER", "GSSAPI"] | None
    ) = None
    sasl_username: str | None = None
    sasl_password: SecretStr | None = None
    ssl_ca_location: str | None = None
    ssl_certificate_location: str | None = None
    ssl_key_location: str | None = None
    ssl_key_password: SecretStr | None = None
    client_config_extra: dict[str, str] = Field(
        default_factory=dict,
        description="More librdkafka properties, as a JSON object of strings.",
    )

    @field_validator("bootstrap_servers")
    @classmethod
    def _bootstrap(cls, value: str) -> str:
        servers = [s.strip() for s in value.split(",") if s.strip()]
        if not servers or any(":" not in s for s in servers):
            raise ValueError("must be a comma-separated list of host:port")
        return ",".join(servers)

    @field_validator("topic")
    @classmethod
    def _topic(cls, value: str) -> str:
        if not _TOPIC.match(value) or value in (".", ".."):
            raise ValueError("must be 1-245 characters of letters, digits, '.', '_' and '-'")
        return value

    @property
    def dlq_topic(self) -> str:
        return f"{self.topic}.dlq"

    def client_config(self) -> KafkaConfig:
        """The librdkafka properties shared by producers, consumers and admin clients.

        Secrets are revealed here, so the result must never be logged.
        """
        config: KafkaConfig = {
            "bootstrap.servers": self.bootstrap_servers,
            "security.protocol": self.security_protocol,
            "logger": LIBRDKAFKA_LOGGER,
        }
        optional: dict[str, str | SecretStr | None] = {
            "sasl.mechanism": self.sasl_mechanism,
            "sasl.username": self.sasl_username,
            "sasl.password": self.sasl_password,
            "ssl.ca.location": self.ssl_ca_location,
            "ssl.certificate.location": self.ssl_certificate_location,
            "ssl.key.location": self.ssl_key_location,
            "ssl.key.password": self.ssl_key_password,
        }
        for key, value in optional.items():
            if value is not None:
                config[key] = value.get_secret_value() if isinstance(value, SecretStr) else value
        config.update(self.client_config_extra)
        return config

    def secrets(self) -> list[str]:
        return _revealed(self.sasl_password, self.ssl_key_password)


class ClickHouseSettings(BaseSettings):
    """Which ClickHouse to use (``AIUSAGE_CLICKHOUSE_*``).

    The DSN is a secret because a server DSN may carry a password; use
    :meth:`target` for its parsed form and ``target().display`` for logs.
    """

    model_config = settings_config("AIUSAGE_CLICKHOUSE_")

    dsn: SecretStr = Field(default_factory=lambda: SecretStr(default_dsn()))
    password: SecretStr | None = Field(
        None, description="Overrides the DSN's password, so that the DSN can stay secret-free."
    )
    database: str | None = Field(
        None, description="Overrides the DSN's database. Default: the DSN's, else 'aiusage'."
    )
    cluster: str | None = Field(
        None, description="Cluster name: DDL runs ON CLUSTER and engines become Replicated."
    )
    log_ttl_days: int | None = Field(
        None, ge=1, description="Delete raw log rows older than this many days; unset keeps all."
    )
    connect_timeout_s: float = Field(10.0, gt=0)
    send_receive_timeout_s: float = Field(300.0, gt=0)

    @field_validator("dsn")
    @classmethod
    def _dsn(cls, value: SecretStr) -> SecretStr:
        parse_dsn(value.get_secret_value())
        return value

    @field_validator("database")
    @classmethod
    def _database(cls, value: str | None) -> str | None:
        return None if value is None else validate_identifier(value, what="database name")

    @field_validator("cluster")
    @classmethod
    def _cluster(cls, value: str | None) -> str | None:
        if value is not None and not _CLUSTER.match(value):
            raise ValueError("must hold only letters, digits, '_', '.' and '-'")
        return value

    def target(self) -> ClickHouseTarget:
        parsed = parse_dsn(self.dsn.get_secret_value())
        password = self.password.get_secret_value() if self.password else parsed.password
        database = self.database or parsed.database or DEFAULT_DATABASE
        return dataclasses.replace(parsed, database=database, password=password)

    @property
    def database_name(self) -> str:
        name = self.target().database
        assert name is not None
        return name

    def secrets(self) -> list[str]:
        password = self.target().password
        return [password] if password else []


class MetricsSettings(BaseSettings):
    """The Prometheus and health endpoint of a service (``AIUSAGE_METRICS_*``)."""

    model_config = settings_config("AIUSAGE_METRICS_")

    port: int = Field(9108, ge=0, le=65535, description="0 disables the metrics server.")
    host: str = "0.0.0.0"


class LogSettings(BaseSettings):
    """How services log (``AIUSAGE_LOG_*``)."""

    model_config = settings_config("AIUSAGE_LOG_")

    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    format: Literal["text", "json"] = "text"

    @field_validator("level", mode="before")
    @classmethod
    def _upper(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value

    @field_validator("format", mode="before")
    @classmethod
    def _lower(cls, value: object) -> object:
        return value.lower() if isinstance(value, str) else value


S = TypeVar("S", bound=BaseSettings)


def load(cls: type[S], **overrides: Any) -> S:
    """Build a settings object, turning every invalid field into one line of a ConfigError."""
    try:
        return cls(**overrides)
    except ValidationError as err:
        raise ConfigError(_describe(cls, err)) from None
    except SettingsError as err:
        raise ConfigError(f"{_prefix(cls)}: {err}") from None


def _describe(cls: type[BaseSettings], err: ValidationError) -> str:
    lines = []
    for error in err.errors(include_url=False):
        field = ".".join(str(part) for part in error["loc"])
        name = f"{_prefix(cls)}{field.upper()}" if field else f"{_prefix(cls)}*"
        message = error["msg"].removeprefix("Value error, ")
        value = error.get("input")
        shown = "" if _is_secret(field) or isinstance(value, dict) else f" (got {value!r})"
        lines.append(f"{name}: {message}{shown}")
    return "\n".join(lines)


def _prefix(cls: type[BaseSettings]) -> str:
    return str(cls.model_config.get("env_prefix", ""))


def _is_secret(field: str) -> bool:
    return any(word in field for word in ("password", "dsn", "secret", "token"))


def _revealed(*values: SecretStr | None) -> list[str]:
    return [v.get_secret_value() for v in values if v is not None and v.get_secret_value()]
