from __future__ import annotations

from pathlib import Path

import pytest

from aiusage.errors import ConfigError
from aiusage.settings import (
    ClickHouseSettings,
    KafkaSettings,
    LogSettings,
    MetricsSettings,
    load,
)


def test_documented_defaults() -> None:
    kafka = load(KafkaSettings)
    assert kafka.bootstrap_servers == "127.0.0.1:9092"
    assert kafka.topic == "ai-usage-events"
    assert kafka.dlq_topic == "ai-usage-events.dlq"
    assert kafka.partitions == 6
    assert load(MetricsSettings).port == 9108
    clickhouse = load(ClickHouseSettings)
    assert clickhouse.target().kind == "chdb"
    assert clickhouse.target().path == Path.cwd().resolve() / ".aiusage" / "clickhouse"
    assert clickhouse.database_name == "aiusage"
    assert clickhouse.log_ttl_days is None


def test_environment_names_operators_rely_on(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIUSAGE_KAFKA_BOOTSTRAP_SERVERS", "k1:9092, k2:9092")
    monkeypatch.setenv("AIUSAGE_KAFKA_TOPIC", "usage")
    monkeypatch.setenv("AIUSAGE_KAFKA_GROUP_ID", "meters")
    monkeypatch.setenv("AIUSAGE_CLICKHOUSE_DSN", "http://u:p@ch:8123/metering")
    monkeypatch.setenv("AIUSAGE_METRICS_PORT", "0")
    kafka = load(KafkaSettings)
    assert kafka.bootstrap_servers == "k1:9092,k2:9092"
    assert (kafka.topic, kafka.dlq_topic, kafka.group_id) == ("usage", "usage.dlq", "meters")
    assert load(ClickHouseSettings).database_name == "metering"
    assert load(MetricsSettings).port == 0


def test_dotenv_file_in_the_working_directory_is_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / ".env").write_text("AIUSAGE_KAFKA_TOPIC=from-dotenv\nAIUSAGE_LOG_FORMAT=json\n")
    monkeypatch.chdir(tmp_path)
    assert load(KafkaSettings).topic == "from-dotenv"
    assert load(LogSettings).format == "json"


def test_each_invalid_field_is_one_line_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AIUSAGE_KAFKA_PARTITIONS", "zero")
    monkeypatch.setenv("AIUSAGE_KAFKA_TOPIC", "bad topic!")
    monkeypatch.setenv("AIUSAGE_KAFKA_SECURITY_PROTOCOL", "TLS")
    with pytest.raises(ConfigError) as err:
        load(KafkaSettings)
    lines = dict(line.split(": ", 1) for line in str(err.value).splitlines())
    assert set(lines) == {
        "AIUSAGE_KAFKA_PARTITIONS",
        "AIUSAGE_KAFKA_TOPIC",
        "AIUSAGE_KAFKA_SECURITY_PROTOCOL",
    }
    assert "(got 'zero')" in lines["AIUSAGE_KAFKA_PARTITIONS"]
    assert "(got 'TLS')" in lines["AIUSAGE_KAFKA_SECURITY_PROTOCOL"]
    assert "Traceback" not in str(err.value)


def test_bad_json_in_a_structured_field_is_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIUSAGE_KAFKA_CLIENT_CONFIG_EXTRA", "{not json")
    with pytest.raises(ConfigError) as err:
        load(KafkaSettings)
    assert len(str(err.value).splitlines()) == 1
    assert "client_config_extra" in str(err.value)


def test_invalid_dsn_error_does_not_echo_the_dsn(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIUSAGE_CLICKHOUSE_DSN", "http://u:hunter2@ch:123456/db")
    with pytest.raises(ConfigError) as err:
        load(ClickHouseSettings)
    assert str(err.value).startswith("AIUSAGE_CLICKHOUSE_DSN: ")
    assert "hunter2" not in str(err.value)


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("AIUSAGE_CLICKHOUSE_LOG_TTL_DAYS", "0"),
        ("AIUSAGE_CLICKHOUSE_CLUSTER", "prod cluster"),
        ("AIUSAGE_CLICKHOUSE_DATABASE", "x`; DROP"),
        ("AIUSAGE_METRICS_PORT", "70000"),
        ("AIUSAGE_LOG_LEVEL", "LOUD"),
        ("AIUSAGE_KAFKA_BOOTSTRAP_SERVERS", "no-port"),
    ],
)
def test_out_of_range_values_are_rejected(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    monkeypatch.setenv(variable, value)
    classes = (KafkaSettings, ClickHouseSettings, MetricsSettings, LogSettings)
    cls = next(c for c in classes if variable.startswith(str(c.model_config["env_prefix"])))
    with pytest.raises(ConfigError, match=f"^{variable}: "):
        load(cls)


def test_settings_are_frozen() -> None:
    settings = load(KafkaSettings)
    with pytest.raises(Exception, match="frozen"):
        settings.topic = "other"  # type: ignore[misc]


def test_secrets_are_masked_in_repr_and_revealed_only_for_clients(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AIUSAGE_KAFKA_SECURITY_PROTOCOL", "SASL_SSL")
    monkeypatch.setenv("AIUSAGE_KAFKA_SASL_MECHANISM", "SCRAM-SHA-512")
    monkeypatch.setenv("AIUSAGE_KAFKA_SASL_USERNAME", "meter")
    monkeypatch.setenv("AIUSAGE_KAFKA_SASL_PASSWORD", "kafka-secret")
    monkeypatch.setenv("AIUSAGE_KAFKA_SSL_CA_LOCATION", "/etc/ca.pem")
    monkeypatch.setenv("AIUSAGE_KAFKA_CLIENT_CONFIG_EXTRA", '{"client.id": "meter-1"}')
    settings = load(KafkaSettings)
    assert "kafka-secret" not in repr(settings)
    assert "kafka-secret" not in str(settings.model_dump())
    config = settings.client_config()
    assert config.pop("logger").name == "aiusage.librdkafka"
    assert config == {
        "bootstrap.servers": "127.0.0.1:9092",
        "security.protocol": "SASL_SSL",
        "sasl.mechanism": "SCRAM-SHA-512",
        "sasl.username": "meter",
        "sasl.password": "kafka-secret",
        "ssl.ca.location": "/etc/ca.pem",
        "client.id": "meter-1",
    }
    assert settings.secrets() == ["kafka-secret"]


def test_clickhouse_password_override_and_masking(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIUSAGE_CLICKHOUSE_DSN", "http://reader@ch:8123/db")
    monkeypatch.setenv("AIUSAGE_CLICKHOUSE_PASSWORD", "ch-secret")
    settings = load(ClickHouseSettings)
    assert settings.target().password == "ch-secret"
    assert settings.target().display == "http://reader:***@ch:8123/db"
    assert "ch-secret" not in repr(settings)
    assert settings.secrets() == ["ch-secret"]


def test_database_setting_overrides_the_dsn(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIUSAGE_CLICKHOUSE_DSN", "chdb:///data?database=one")
    assert load(ClickHouseSettings).database_name == "one"
    monkeypatch.setenv("AIUSAGE_CLICKHOUSE_DATABASE", "two")
    assert load(ClickHouseSettings).database_name == "two"
