"""The unit guard itself: these run as unit tests, so the guard is active."""

from __future__ import annotations

import socket

import clickhouse_connect
import pytest

from aiusage import kafka_topics
from aiusage.settings import KafkaSettings
from tests.guard import ServiceTouched


def test_sockets_are_closed_to_unit_tests() -> None:
    with pytest.raises(ServiceTouched, match="network"):
        socket.create_connection(("127.0.0.1", 9092), timeout=1)


def test_clickhouse_is_closed_to_unit_tests() -> None:
    with pytest.raises(ServiceTouched, match="ClickHouse"):
        clickhouse_connect.get_client(dsn="chdb:///tmp/never-opened")


def test_kafka_clients_our_code_imported_are_closed_to_unit_tests() -> None:
    with pytest.raises(ServiceTouched, match="Kafka"):
        kafka_topics.ensure_topics(KafkaSettings())


def test_service_fixtures_refuse_unit_tests(request: pytest.FixtureRequest) -> None:
    with pytest.raises(ServiceTouched, match="asked for"):
        request.getfixturevalue("clickhouse_settings")


def test_kafka_fixture_refuses_unit_tests_before_starting_a_broker(
    request: pytest.FixtureRequest,
) -> None:
    with pytest.raises(ServiceTouched, match="asked for Kafka"):
        request.getfixturevalue("kafka_settings")
