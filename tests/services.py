"""Finding the Kafka broker and ClickHouse the tests run against.

Each service is looked up in this order:

1. the environment: ``AIUSAGE_TEST_KAFKA_BOOTSTRAP``, ``AIUSAGE_TEST_CLICKHOUSE_DSN``;
2. a reachable Docker engine: testcontainers;
3. otherwise the local broker of ``deploy/kafka/local-kafka`` and a temporary chDB directory.

Whatever this module starts, it stops; whatever it found running, it leaves alone.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
LOCAL_KAFKA = REPO / "deploy" / "kafka" / "local-kafka"

KAFKA_IMAGE = "confluentinc/cp-kafka:7.9.0"
CLICKHOUSE_IMAGE = "clickhouse/clickhouse-server:25.8"


def docker_available() -> bool:
    try:
        import docker

        client = docker.from_env(timeout=3)
        client.ping()
        client.close()
    except Exception:
        return False
    return True


def local_kafka(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(LOCAL_KAFKA), *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=600,
    )


@contextlib.contextmanager
def kafka_bootstrap() -> Iterator[str]:
    configured = os.environ.get("AIUSAGE_TEST_KAFKA_BOOTSTRAP")
    if configured:
        yield configured
        return
    if docker_available():
        from testcontainers.community.kafka import KafkaContainer

        container = KafkaContainer(KAFKA_IMAGE).with_kraft()
        container.with_env("KAFKA_AUTO_CREATE_TOPICS_ENABLE", "false")
        with container:
            yield container.get_bootstrap_server()
        return
    already_running = local_kafka("status").returncode == 0
    if not already_running:
        started = local_kafka("start")
        if started.returncode != 0:
            raise RuntimeError(f"could not start the local broker:\n{started.stderr}")
    bootstrap = local_kafka("bootstrap").stdout.strip()
    try:
        yield bootstrap
    finally:
        if not already_running:
            local_kafka("stop")


@contextlib.contextmanager
def clickhouse_dsn(scratch: Path) -> Iterator[str]:
    configured = os.environ.get("AIUSAGE_TEST_CLICKHOUSE_DSN")
    if configured:
        yield configured
        return
    if docker_available():
        from testcontainers.community.clickhouse import ClickHouseContainer

        container = ClickHouseContainer(CLICKHOUSE_IMAGE, username="aiusage", password="aiusage")
        container.with_exposed_ports(8123)
        with container:
            host = container.get_container_host_ip()
            port = container.get_exposed_port(8123)
            yield f"http://aiusage:aiusage@{host}:{port}"
        return
    # One chDB data directory per test session: a process can open only one.
    yield f"chdb://{(scratch / 'chdb').as_posix()}"
