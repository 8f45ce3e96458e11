"""``aiusage demo``: the whole pipeline on the embedded default, checked end to end.

It starts the local broker (unless one answers), runs ``aiusage serve`` on a fresh chDB
directory, publishes a realistic workload with invalid events and resent duplicates,
waits until everything is ingested, runs the aggregation catch-up, then prints reports
that it checks against the producer's own expected totals, the dead letters by reason,
and a chart. It stops everything it started. Every number it prints is read back
through the HTTP API or the broker, never taken from the producer.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from confluent_kafka import Consumer, TopicPartition

from aiusage.errors import AiusageError
from aiusage.kafka_topics import admin_client, check_reachable
from aiusage.loadgen import LoadGenerator, Workload
from aiusage.producer import UsageProducer
from aiusage.settings import KafkaSettings
from consumer.dlq import HEADER_KIND
from consumer.replay import header_value

REPO = Path(__file__).resolve().parent.parent
LOCAL_KAFKA = REPO / "deploy" / "kafka" / "local-kafka"


class DemoFailed(AiusageError):
    """The demo's own check failed: the pipeline did not produce the expected numbers."""


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=30) as response:
        return json.loads(response.read())


def _metric(port: int, name: str) -> float:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        text = response.read().decode()
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith(name) and not line.startswith("#")
    )


def _wait(condition: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if condition():
                return
        except OSError:
            pass  # the service is still starting
        time.sleep(0.25)
    raise DemoFailed(f"timed out after {timeout_s:.0f}s waiting for {what}")


def _step(text: str) -> None:
    print(f"\n== {text}", flush=True)


class Demo:
    def __init__(self, events: int, organizations: int, days: int, workdir: Path) -> None:
        self.events, self.organizations, self.days = events, organizations, days
        self.workdir = workdir
        stamp = datetime.now(UTC).strftime("%Y%m%d%H%M%S")
        self.kafka = KafkaSettings(topic=f"aiusage-demo-{stamp}", group_id=f"demo-{stamp}")
        self.api_port, self.metrics_port = _free_port(), _free_port()
        self.started_broker = False
        self.serve: subprocess.Popen[bytes] | None = None

    # --- services -------------------------------------------------------------------

    def start_broker(self) -> None:
        try:
            check_reachable(admin_client(self.kafka), self.kafka, timeout_s=3)
            print(f"using the broker at {self.kafka.bootstrap_servers}")
            return
        except AiusageError:
            pass
        print("starting the local Kafka broker (the first run resolves it from Maven Central)")
        done = subprocess.run([str(LOCAL_KAFKA), "start"], check=False)
        if done.returncode != 0:
            raise DemoFailed("the local Kafka broker did not start")
        self.started_broker = True

    def start_serve(self) -> None:
        if self.workdir.exists():
            shutil.rmtree(self.workdir)
        self.workdir.mkdir(parents=True)
        env = {
            **os.environ,
            "AIUSAGE_KAFKA_TOPIC": self.kafka.topic,
            "AIUSAGE_KAFKA_GROUP_ID": self.kafka.group_id,
            "AIUSAGE_CLICKHOUSE_DSN": f"chdb://{self.workdir / 'clickhouse'}",
            "AIUSAGE_QUERY_PORT": str(self.api_port),
            "AIUSAGE_METRICS_PORT": str(self.metrics_port),
            "AIUSAGE_METRICS_HOST": "127.0.0.1",
            # The demo aggregates once ingestion has finished: no insert is in flight.
            "AIUSAGE_AGGREGATOR_INGEST_SETTLE_S": "0",
            "AIUSAGE_CONSUMER_BATCH_MAX_WAIT_S": "0.5",
        }
        log = (self.workdir / "serve.log").open("wb")
        self.serve = subprocess.Popen(
            [sys.executable, "-m", "aiusage.cli", "serve"], env=env, stdout=log, stderr=log
        )
        _wait(
            lambda: _get_json(f"http://127.0.0.1:{self.metrics_port}/healthz")["runs"] >= 1,
            120,
            "aiusage serve to start",
        )
        print(f"aiusage serve is up (pid {self.serve.pid}, HTTP API on port {self.api_port})")

    def stop(self) -> None:
        if self.serve is not None and self.serve.poll() is None:
            self.serve.send_signal(signal.SIGTERM)
            try:
                code = self.serve.wait(60)
                print(f"aiusage serve stopped (exit {code})")
            except subprocess.TimeoutExpired:
                self.serve.kill()
        if self.started_broker:
            subprocess.run([str(LOCAL_KAFKA), "stop"], check=False)

    # --- the workload ---------------------------------------------------------------

    def produce(self) -> dict[str, Any]:
        generator = LoadGenerator(
            Workload(self.events, self.organizations, self.days, seed=7,
                     invalid_fraction=0.01, duplicate_fraction=0.02)
        )  # fmt: skip
        started = time.monotonic()
        with UsageProducer(self.kafka, linger_ms=50) as producer:
            for message in generator:
                producer.send_raw(message.payload, message.key, message.event_id)
        expected = generator.expected()
        (self.workdir / "expected.json").write_text(json.dumps(expected, indent=1))
        invalid = sum(expected["invalid"].values())
        print(
            f"published {self.events:,} messages in {time.monotonic() - started:.1f}s: "
            f"{expected['unique_events']:,} events, {expected['duplicates']:,} resent "
            f"duplicates, {invalid:,} invalid"
        )
        return expected

    def wait_for_ingestion(self) -> None:
        total = self.events
        started = time.monotonic()

        def handled() -> bool:
            inserted = _metric(self.metrics_port, "aiusage_consumer_events_inserted_total")
            rejected = _metric(self.metrics_port, "aiusage_consumer_events_rejected_total")
            return inserted + rejected >= total

        _wait(handled, 300, "every message to be ingested")
        print(f"ingested and committed {total:,} messages ({time.monotonic() - started:.1f}s)")

    def aggregate(self) -> None:
        assert self.serve is not None
        before = _get_json(f"http://127.0.0.1:{self.metrics_port}/healthz")["runs"]
        self.serve.send_signal(signal.SIGUSR1)
        _wait(
            lambda: _get_json(f"http://127.0.0.1:{self.metrics_port}/healthz")["runs"] > before,
            300,
            "the aggregation catch-up",
        )
        rows = _metric(self.metrics_port, "aiusage_aggregator_rows_written_total")
        print(f"rolled up every day up to yesterday: {rows:,.0f} organization-days")

    # --- the checks -----------------------------------------------------------------

    def report(self, org: str, days: int, expected: dict[str, Any]) -> None:
        """The last ``days`` whole UTC days and today so far, up to now."""
        now = datetime.now(UTC)
        start = now.date() - timedelta(days=days)
        until = now.isoformat(timespec="milliseconds").replace("+00:00", "Z")
        body = _get_json(
            f"http://127.0.0.1:{self.api_port}/v1/organizations/{org}/usage"
            f"?start={start}&end={until}&granularity=day"
        )
        totals = body["totals"]
        # Every published event is older than now: the expected days from start on.
        want = [
            v for d, v in expected["totals"].get(org, {}).items()
            if date.fromisoformat(d) >= start
        ]  # fmt: skip
        want_cost = sum((Decimal(v["cost"]) for v in want), Decimal(0))
        want_calls = sum(v["calls"] for v in want)
        ok = Decimal(totals["total_cost"]) == want_cost and totals["total_calls"] == want_calls
        print(
            f"{org}, {start} .. now ({days} days and today): ${totals['total_cost']} over "
            f"{totals['total_calls']:,} calls, cache hit {totals['avg_cache_hit_rate']:.1%}\n"
            f"   route {body['route']}: {len(body['rollup_days'])} days from the rollup, "
            f"{len(body['raw_ranges'])} raw range(s); watermark {body['watermark']}\n"
            f"   {'matches' if ok else 'DIFFERS FROM'} the producer's expected totals "
            f"(${want_cost}, {want_calls:,} calls)"
        )
        if not ok:
            raise DemoFailed(f"{org}'s {days}-day report differs from the expected totals")

    def dead_letters(self, expected: dict[str, Any]) -> None:
        reader = Consumer({**self.kafka.client_config(), "group.id": f"{self.kafka.group_id}-dlq"})
        topic = self.kafka.dlq_topic
        partitions = reader.list_topics(topic, timeout=10).topics[topic].partitions
        ends = {
            p: reader.get_watermark_offsets(TopicPartition(topic, p), 10)[1] for p in partitions
        }
        reader.assign([TopicPartition(topic, p, 0) for p, end in ends.items() if end > 0])
        kinds: Counter[str] = Counter()
        while sum(kinds.values()) < sum(ends.values()):
            for message in reader.consume(1000, 1.0):
                kinds[header_value(message, HEADER_KIND) or "unknown"] += 1
        reader.close()
        listed = ", ".join(f"{kind} {count}" for kind, count in kinds.most_common())
        print(f"{sum(kinds.values()):,} dead letters in {topic}: {listed}")
        if sum(kinds.values()) != sum(expected["invalid"].values()):
            raise DemoFailed("the dead letters do not match the invalid events published")

    def chart(self) -> Path:
        import logging

        import matplotlib
        import matplotlib.dates

        matplotlib.use("Agg")
        logging.getLogger("matplotlib").setLevel(logging.WARNING)
        import matplotlib.pyplot as plt

        today = datetime.now(UTC).date()
        start = today - timedelta(days=self.days - 1)  # whole days only: no partial edges
        figure, axes = plt.subplots(figsize=(11, 5.5))
        for rank in range(1, self.organizations + 1):
            org = f"org-{rank:04d}"
            body = _get_json(
                f"http://127.0.0.1:{self.api_port}/v1/organizations/{org}/usage"
                f"?start={start}&end={today}&granularity=day"
            )
            # matplotlib reads ISO dates as its own date numbers.
            days = matplotlib.dates.datestr2num([d["date"] for d in body["days"]])  # type: ignore[no-untyped-call]
            costs = [float(d["total_cost"]) for d in body["days"]]
            axes.plot(days, costs, label=org if rank <= 8 else None, linewidth=1.2)
        axes.xaxis_date()
        axes.set_yscale("log")
        axes.set_title("Daily cost per organization (USD, UTC days)")
        axes.set_ylabel("USD per day")
        axes.legend(loc="upper left", fontsize=8, ncol=2, title="largest organizations")
        figure.autofmt_xdate()
        path = self.workdir / "daily-cost.png"
        figure.savefig(path, dpi=110, bbox_inches="tight")
        plt.close(figure)
        return path


def run_demo(
    events: int = 250_000, organizations: int = 20, days: int = 45, workdir: Path | None = None
) -> int:
    started = time.monotonic()
    demo = Demo(events, organizations, days, workdir or REPO / ".aiusage" / "demo")
    try:
        _step("1. Kafka")
        demo.start_broker()
        _step("2. aiusage serve: consumer, aggregator and HTTP API in one process (chDB)")
        demo.start_serve()
        _step(f"3. publishing {days} days of usage for {organizations} organizations")
        expected = demo.produce()
        _step("4. ingesting into ai_usage_log (exactly once; bad events to the DLQ)")
        demo.wait_for_ingestion()
        _step("5. daily rollups (the nightly job, run now)")
        demo.aggregate()
        _step("6. reports, read through the HTTP API and checked against the producer")
        for org in ("org-0001", "org-0007"):
            for span in (7, 30):
                demo.report(org, span, expected)
        _step("7. the dead-letter topic")
        demo.dead_letters(expected)
        _step("8. a chart")
        print(f"daily cost per organization: {demo.chart()}")
    finally:
        _step("9. stopping what the demo started")
        demo.stop()
    print(f"\ndone in {time.monotonic() - started:.0f}s; the data is in {demo.workdir}")
    return 0
