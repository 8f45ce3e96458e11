"""The test harness: layers, services and per-test isolation.

* Tests under ``tests/unit`` are marked ``unit`` and must not touch a service;
  ``tests/integration`` and ``tests/reliability`` get their own markers.
* Each integration test gets its own topics (``kafka_settings``) and its own
  database (``clickhouse_settings``), created before and dropped after it.
"""

from __future__ import annotations

import importlib
import os
import pkgutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from clickhouse_connect.driver.client import Client

from aiusage.clickhouse import connect
from aiusage.kafka_topics import delete_topics, ensure_topics
from aiusage.schema import context_for, migrate
from aiusage.settings import ClickHouseSettings, KafkaSettings
from tests import guard, services

LAYERS = ("unit", "integration", "reliability")


def _import_all_our_modules() -> None:
    """Bind every module's imports now, so that the unit guard patches are never captured."""
    for package_name in guard.OUR_PACKAGES:
        package = importlib.import_module(package_name)
        for info in pkgutil.walk_packages(package.__path__, prefix=f"{package_name}."):
            importlib.import_module(info.name)


_import_all_our_modules()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        layer = Path(str(item.fspath)).parent.name
        if layer in LAYERS and not item.get_closest_marker(layer):
            item.add_marker(getattr(pytest.mark, layer))
        if not any(item.get_closest_marker(name) for name in LAYERS):
            raise pytest.UsageError(f"{item.nodeid} has no layer marker ({', '.join(LAYERS)})")


@pytest.fixture(autouse=True)
def _isolated_environment(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """No AIUSAGE_* variable or .env file of the developer's leaks into a test."""
    for name in list(os.environ):
        if name.startswith("AIUSAGE_") and not name.startswith("AIUSAGE_TEST_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    if request.node.get_closest_marker("unit"):
        guard.install(monkeypatch)


def _require_service(request: pytest.FixtureRequest, name: str) -> None:
    if request.node.get_closest_marker("unit"):
        raise guard.ServiceTouched(f"a unit test asked for {name}; mark it integration")


# --- Kafka -----------------------------------------------------------------------------


@pytest.fixture(scope="session")
def kafka_bootstrap() -> Iterator[str]:
    with services.kafka_bootstrap() as bootstrap:
        yield bootstrap


@pytest.fixture
def kafka_settings(request: pytest.FixtureRequest) -> Iterator[KafkaSettings]:
    """Settings naming a fresh topic (3 partitions) and its DLQ, both created for this test."""
    _require_service(request, "Kafka")
    kafka_bootstrap: str = request.getfixturevalue("kafka_bootstrap")
    suffix = uuid.uuid4().hex[:12]
    settings = KafkaSettings(
        bootstrap_servers=kafka_bootstrap,
        topic=f"test-{suffix}",
        group_id=f"test-{suffix}",
        partitions=3,
    )
    ensure_topics(settings)
    yield settings
    delete_topics(settings, [settings.topic, settings.dlq_topic])


# --- ClickHouse ------------------------------------------------------------------------


@pytest.fixture(scope="session")
def clickhouse_dsn(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with services.clickhouse_dsn(tmp_path_factory.mktemp("clickhouse")) as dsn:
        yield dsn


@pytest.fixture
def clickhouse_settings(request: pytest.FixtureRequest) -> Iterator[ClickHouseSettings]:
    """Settings naming a fresh database, dropped after the test."""
    _require_service(request, "ClickHouse")
    clickhouse_dsn: str = request.getfixturevalue("clickhouse_dsn")
    settings = ClickHouseSettings(dsn=clickhouse_dsn, database=f"test_{uuid.uuid4().hex[:12]}")
    yield settings
    client = connect(settings)
    try:
        client.command(f"DROP DATABASE IF EXISTS `{settings.database_name}` SYNC")
    finally:
        client.close()


@pytest.fixture
def clickhouse(clickhouse_settings: ClickHouseSettings) -> Iterator[Client]:
    """A client on the test's (not yet migrated) database."""
    client = connect(clickhouse_settings)
    yield client
    client.close()


@pytest.fixture
def migrated(clickhouse: Client, clickhouse_settings: ClickHouseSettings) -> Client:
    """A client on the test's database, with the schema applied."""
    migrate(clickhouse, context_for(clickhouse_settings))
    return clickhouse
