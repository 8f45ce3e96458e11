"""``aiusage serve``: the consumer, the aggregator's scheduler and the HTTP API in one
process, sharing one ClickHouse handle.

Embedded mode needs it: a chDB data directory can be opened by one process only. In
server mode it is a convenient single deployment; each component also runs on its own
(``consume``, ``aggregate run``, ``query serve``), several of each if wanted.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from typing import Any

import uvicorn
from prometheus_client import CollectorRegistry

from aggregator.daemon import Daemon
from aggregator.metrics import AggregatorMetrics
from aggregator.runner import Aggregator
from aggregator.settings import AggregatorSettings
from aiusage.clickhouse import connect
from aiusage.clock import SystemClock
from aiusage.observability import ObservabilityServer
from aiusage.schema import context_for, migrate
from aiusage.settings import ClickHouseSettings, KafkaSettings, MetricsSettings
from consumer.metrics import ConsumerMetrics
from consumer.service import ConsumerConfig, ConsumerStopped, consume
from consumer.settings import ConsumerSettings
from query.http import create_app
from query.settings import QuerySettings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ServeConfig:
    kafka: KafkaSettings
    clickhouse: ClickHouseSettings
    consumer: ConsumerSettings
    aggregator: AggregatorSettings
    query: QuerySettings
    metrics: MetricsSettings


class _Combined:
    """The consumer's and the aggregator's registries behind one /metrics."""

    def __init__(self, *registries: CollectorRegistry) -> None:
        self._registries = registries

    def collect(self) -> Any:
        for registry in self._registries:
            yield from registry.collect()


def serve(config: ServeConfig, stop: threading.Event, catch_up_now: threading.Event) -> int:
    """Run the three components until ``stop`` is set; return the exit code.

    ``catch_up_now`` asks the aggregator for a catch-up before the next tick (SIGUSR1).
    A component that stops on its own stops the others.
    """
    client = connect(config.clickhouse)
    ctx = context_for(config.clickhouse)
    migrate(client, ctx)
    consumer_metrics, aggregator_metrics = ConsumerMetrics(), AggregatorMetrics()
    aggregator = Aggregator(client, ctx, config.aggregator, SystemClock(), aggregator_metrics)

    def wait(seconds: float) -> bool:
        """The daemon's wait ends early when a run is requested or on stop."""
        catch_up_now.wait(seconds)
        return stop.is_set()

    daemon = Daemon(
        aggregator, config.aggregator.schedule, SystemClock(), stop, wait, run_now=catch_up_now
    )
    exit_codes: dict[str, int] = {}

    def run_consumer() -> None:
        consumer_config = ConsumerConfig(
            config.kafka, config.clickhouse, config.consumer, MetricsSettings(port=0)
        )
        try:
            exit_codes["consumer"] = consume(
                consumer_config, stop, client=client, metrics=consumer_metrics
            )
        except ConsumerStopped as err:
            log.error("%s", err)
            exit_codes["consumer"] = err.exit_code
        except Exception:
            log.exception("the consumer failed")
            exit_codes["consumer"] = 1
        finally:
            stop.set()

    def run_daemon() -> None:
        try:
            daemon.run()
        finally:
            stop.set()

    # The API's own handles: requests never wait behind the consumer's inserts.
    api_clients = (connect(config.clickhouse), connect(config.clickhouse))
    app = create_app(
        api_clients[0], ctx, config.query, config.aggregator.ingest_settle_s, api_clients[1]
    )
    http = uvicorn.Server(
        uvicorn.Config(app, host=config.query.host, port=config.query.port, log_config=None)
    )
    # Run off the main thread, uvicorn installs no signal handlers: ours stop everything.
    registry = CollectorRegistry()
    registry.register(_Combined(consumer_metrics.registry, aggregator_metrics.registry))
    observability = ObservabilityServer(config.metrics, registry, daemon.health)
    threads = [
        threading.Thread(target=run_consumer, name="aiusage-consumer"),
        threading.Thread(target=run_daemon, name="aiusage-aggregator"),
        threading.Thread(target=http.run, name="aiusage-http"),
    ]
    observability.start()
    for thread in threads:
        thread.start()
    log.info(
        "serving: consumer on %s, aggregator on %r, HTTP API on http://%s:%d",
        config.kafka.topic, config.aggregator.schedule, config.query.host, config.query.port,
    )  # fmt: skip
    try:
        stop.wait()
    finally:
        stop.set()
        catch_up_now.set()
        http.should_exit = True
        for thread in threads:
            thread.join(config.consumer.shutdown_timeout_s + 30)
        observability.stop()
        for api_client in api_clients:
            api_client.close()
        client.close()
    return max(exit_codes.values(), default=0)
