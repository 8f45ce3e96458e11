"""Wiring ``aiusage consume``: settings in, a running IngestLoop out."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass

from clickhouse_connect.driver.client import Client
from confluent_kafka import Consumer

from aiusage.clickhouse import connect
from aiusage.clock import Clock, SystemClock
from aiusage.errors import AiusageError
from aiusage.kafka_topics import ensure_topics
from aiusage.observability import ObservabilityServer
from aiusage.schema import context_for, migrate
from aiusage.settings import ClickHouseSettings, KafkaConfig, KafkaSettings, MetricsSettings
from consumer.dlq import DeadLetterQueue, DlqLimitExceeded
from consumer.loop import FatalWriteError, IngestLoop
from consumer.metrics import ConsumerMetrics
from consumer.settings import ConsumerSettings
from consumer.writer import ClickHouseRowWriter, RowWriter

log = logging.getLogger(__name__)

EXIT_OK = 0
EXIT_WRITE_FAILED = 1
EXIT_DLQ_LIMIT = 3
EXIT_UNCLEAN = 75  # the last batch could not be written before the shutdown timeout


class ConsumerStopped(AiusageError):
    """The consumer stopped on purpose: the DLQ limit, or a write retrying cannot fix."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code


@dataclass(frozen=True)
class ConsumerConfig:
    kafka: KafkaSettings
    clickhouse: ClickHouseSettings
    consumer: ConsumerSettings
    metrics: MetricsSettings


def kafka_consumer_config(
    kafka: KafkaSettings, settings: ConsumerSettings, metrics: ConsumerMetrics
) -> KafkaConfig:
    config: KafkaConfig = {
        **kafka.client_config(),
        "group.id": kafka.group_id,
        "client.id": "aiusage-consumer",
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
        "auto.offset.reset": "earliest",
        # Eager rebalancing: a revoke takes every partition, so an unwritten batch is
        # dropped whole and re-read from the committed offsets by the next owner.
        "partition.assignment.strategy": "range",
        "isolation.level": "read_committed",
        # Bounds the prefetch queue, so memory follows the batch settings, not the backlog.
        "queued.max.messages.kbytes": 16 * 1024,
        "statistics.interval.ms": settings.statistics_interval_ms,
        "session.timeout.ms": settings.session_timeout_ms,
    }
    if settings.group_instance_id:
        config["group.instance.id"] = settings.group_instance_id
    if settings.statistics_interval_ms:
        config["stats_cb"] = metrics.record_statistics
    return config


def consume(
    config: ConsumerConfig,
    stop: threading.Event,
    *,
    client: Client | None = None,
    writer: RowWriter | None = None,
    clock: Clock | None = None,
    metrics: ConsumerMetrics | None = None,
) -> int:
    """Run the consumer until ``stop`` is set; return the process exit code.

    ``client`` lets a caller share one ClickHouse handle (embedded mode runs every
    component in one process); ``writer`` lets tests inject faults.
    """
    metrics = metrics or ConsumerMetrics()
    own_client = client is None
    client = client or connect(config.clickhouse)
    try:
        migrate(client, context_for(config.clickhouse))
        ensure_topics(config.kafka)
        loop = IngestLoop(
            consumer=Consumer(kafka_consumer_config(config.kafka, config.consumer, metrics)),
            topic=config.kafka.topic,
            settings=config.consumer,
            writer=writer or ClickHouseRowWriter(client, config.clickhouse.database_name),
            dead_letters=DeadLetterQueue(config.kafka),
            metrics=metrics,
            clock=clock or SystemClock(),
        )
        server = ObservabilityServer(config.metrics, metrics.registry, loop.health, loop.ready)
        server.start()
        try:
            log.info(
                "consuming %s as group %s into %s",
                config.kafka.topic,
                config.kafka.group_id,
                config.clickhouse.target().display,
            )
            clean = loop.run(stop)
        except DlqLimitExceeded as err:
            raise ConsumerStopped(f"stopped: {err}", EXIT_DLQ_LIMIT) from err
        except FatalWriteError as err:
            raise ConsumerStopped(f"stopped: {err}", EXIT_WRITE_FAILED) from err
        finally:
            server.stop()
        return EXIT_OK if clean else EXIT_UNCLEAN
    finally:
        if own_client:
            client.close()
