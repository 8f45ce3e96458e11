"""Ingest benchmark: the full consumer pipeline against the consume-only ceiling.

    python bench/ingest.py [--events 1000000] [--partitions 6]

Needs a broker (``make kafka-start``, or AIUSAGE_KAFKA_BOOTSTRAP_SERVERS). It
pre-produces N events to a fresh topic, then runs, each in a fresh process on the
same topic:

  (a) consume-only: confluent-kafka batch consume that only touches the bytes;
  (b) the pipeline: validation, batching, insert into embedded ClickHouse (chDB) with
      deduplication tokens, and a commit after every insert;
  (c) the pipeline again on a quarter of the backlog, to show that peak memory follows
      the batch settings, not the backlog.

It prints events per second, their ratio, and each run's peak RSS.
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

from confluent_kafka import Consumer, Producer

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from aiusage.kafka_topics import ensure_topics  # noqa: E402
from aiusage.settings import ClickHouseSettings, KafkaSettings, MetricsSettings  # noqa: E402
from consumer.metrics import ConsumerMetrics  # noqa: E402
from consumer.service import ConsumerConfig, consume  # noqa: E402
from consumer.settings import ConsumerSettings  # noqa: E402

MODELS = ("gpt-4o", "gpt-4o-mini", "claude-sonnet", "claude-haiku", "gemini-flash")


def produce(kafka: KafkaSettings, events: int, seed: int = 1) -> None:
    """N realistic, unique events (about 250 bytes each) as fast as the client allows."""
    rng = random.Random(seed)
    producer = Producer(
        {**kafka.client_config(), "linger.ms": 50, "batch.size": 1_000_000,
         "compression.type": "lz4", "queue.buffering.max.messages": 500_000}
    )  # fmt: skip
    start = datetime(2026, 11, 1, tzinfo=UTC)
    orgs = [f"org-{i:04d}" for i in range(1, 1001)]
    for index in range(events):
        org = orgs[min(int(rng.paretovariate(1.2)) - 1, 999)]
        stamp = (start + timedelta(seconds=index % 2_592_000)).isoformat()
        inp = rng.randrange(50, 20_000)
        payload = (
            f'{{"event_id":"{uuid.UUID(int=rng.getrandbits(128), version=4)}",'
            f'"timestamp":"{stamp}","organization_id":"{org}",'
            f'"model":"{MODELS[index % 5]}","provider":"p","feature":"chat",'
            f'"user_id":"user-{index % 500}","input_tokens":{inp},'
            f'"cached_tokens":{inp // 3},"output_tokens":{rng.randrange(1, 4000)},'
            f'"cost_usd":"0.{rng.randrange(10**9):09d}","schema_version":1}}'
        ).encode()
        while True:
            try:
                producer.produce(kafka.topic, value=payload, key=org.encode())
                break
            except BufferError:
                producer.poll(0.05)
        if index % 10_000 == 0:
            producer.poll(0)
    producer.flush(120)


def consume_only(kafka: KafkaSettings, events: int) -> dict[str, float]:
    consumer = Consumer(
        {**kafka.client_config(), "group.id": f"bench-raw-{uuid.uuid4().hex[:8]}",
         "auto.offset.reset": "earliest", "enable.auto.commit": False,
         "queued.max.messages.kbytes": 16 * 1024}
    )  # fmt: skip
    consumer.subscribe([kafka.topic])
    seen = size = 0
    started = None
    while seen < events:
        batch = consumer.consume(10_000, 1.0)
        if batch and started is None:
            started = time.perf_counter()
        for message in batch:
            if message.error() is None:
                size += len(message.value() or b"")
                seen += 1
    elapsed = time.perf_counter() - (started or time.perf_counter())
    consumer.close()
    return {"events": seen, "seconds": elapsed, "bytes": size}


def pipeline(kafka: KafkaSettings, events: int) -> dict[str, float]:
    group = KafkaSettings(**{**kafka.model_dump(), "group_id": f"bench-{uuid.uuid4().hex[:8]}"})
    metrics = ConsumerMetrics()
    stop = threading.Event()
    with tempfile.TemporaryDirectory() as data:
        config = ConsumerConfig(
            kafka=group,
            clickhouse=ClickHouseSettings(dsn=f"chdb://{data}", database="bench"),
            consumer=ConsumerSettings(),
            metrics=MetricsSettings(port=0),
        )
        runner = threading.Thread(target=consume, args=(config, stop), kwargs={"metrics": metrics})
        runner.start()

        def sample(name: str) -> float:
            return metrics.registry.get_sample_value(name) or 0.0

        while sample("aiusage_consumer_events_consumed_total") == 0:
            time.sleep(0.001)
        started = time.perf_counter()
        while sample("aiusage_consumer_events_inserted_total") < events:
            if not runner.is_alive():
                raise SystemExit("the consumer stopped early")
            time.sleep(0.005)
        elapsed = time.perf_counter() - started
        stop.set()
        runner.join()
    return {"events": events, "seconds": elapsed}


def run_phase(phase: str, kafka: KafkaSettings, events: int) -> None:
    result = consume_only(kafka, events) if phase == "consume-only" else pipeline(kafka, events)
    result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps(result))


def spawn(phase: str, topic: str, events: int) -> dict[str, float]:
    done = subprocess.run(
        [sys.executable, __file__, "--phase", phase, "--topic", topic, "--events", str(events)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"{phase} failed:\n{done.stderr[-3000:]}")
    result: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--partitions", type=int, default=6)
    parser.add_argument("--phase", choices=["consume-only", "pipeline"], help=argparse.SUPPRESS)
    parser.add_argument("--topic", help=argparse.SUPPRESS)
    args = parser.parse_args()
    base = KafkaSettings()
    if args.phase:
        run_phase(args.phase, KafkaSettings(**{**base.model_dump(), "topic": args.topic}),
                  args.events)  # fmt: skip
        return
    topic = f"bench-ingest-{uuid.uuid4().hex[:8]}"
    kafka = KafkaSettings(**{**base.model_dump(), "topic": topic, "partitions": args.partitions})
    ensure_topics(kafka)
    t0 = time.perf_counter()
    produce(kafka, args.events)
    print(f"pre-produced {args.events:,} events to {topic} in {time.perf_counter() - t0:.1f}s")
    raw = spawn("consume-only", topic, args.events)
    full = spawn("pipeline", topic, args.events)
    quarter = spawn("pipeline", topic, args.events // 4)
    raw_rate = raw["events"] / raw["seconds"]
    full_rate = full["events"] / full["seconds"]
    print(f"(a) consume-only : {raw_rate:>10,.0f} events/s   peak RSS {raw['peak_rss_mb']:.0f} MiB")
    print(
        f"(b) pipeline     : {full_rate:>10,.0f} events/s   peak RSS {full['peak_rss_mb']:.0f} MiB"
    )
    print(f"    ratio (b)/(a): {full_rate / raw_rate:.2f}")
    print(
        f"(c) pipeline on {args.events // 4:,} events: peak RSS {quarter['peak_rss_mb']:.0f} MiB "
        f"(backlog x4 -> RSS x{full['peak_rss_mb'] / quarter['peak_rss_mb']:.2f})"
    )


if __name__ == "__main__":
    main()
