"""The real broker: topics created by us, messages round-trip, nothing auto-created."""

from __future__ import annotations

import uuid

import pytest
from confluent_kafka import Consumer, KafkaError, Producer
from confluent_kafka.admin import AdminClient

from aiusage.errors import KafkaUnavailable
from aiusage.kafka_topics import check_reachable, ensure_topics
from aiusage.settings import KafkaSettings


def test_topics_are_created_with_the_configured_partitions(kafka_settings: KafkaSettings) -> None:
    admin = AdminClient(kafka_settings.client_config())
    topics = admin.list_topics(timeout=10).topics
    assert len(topics[kafka_settings.topic].partitions) == 3
    assert len(topics[kafka_settings.dlq_topic].partitions) == 3
    again = ensure_topics(kafka_settings)
    assert again.created == ()
    assert set(again.existing) == {kafka_settings.topic, kafka_settings.dlq_topic}


def test_messages_round_trip_through_the_broker(kafka_settings: KafkaSettings) -> None:
    producer = Producer(kafka_settings.client_config())
    sent = {f"org-{i % 4}:{i}".encode() for i in range(50)}
    for value in sent:
        producer.produce(kafka_settings.topic, value=value, key=value.split(b":")[0])
    assert producer.flush(30) == 0

    consumer = Consumer(
        {
            **kafka_settings.client_config(),
            "group.id": kafka_settings.group_id,
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    consumer.subscribe([kafka_settings.topic])
    received: set[bytes] = set()
    try:
        for _ in range(60):
            for message in consumer.consume(num_messages=100, timeout=1.0):
                assert message.error() is None
                received.add(message.value())
            if received == sent:
                break
    finally:
        consumer.close()
    assert received == sent


def test_the_broker_does_not_auto_create_topics(kafka_settings: KafkaSettings) -> None:
    missing = f"never-created-{uuid.uuid4().hex[:8]}"
    errors: list[KafkaError] = []
    producer = Producer({**kafka_settings.client_config(), "message.timeout.ms": 3000})
    producer.produce(missing, value=b"x", on_delivery=lambda err, msg: errors.append(err))
    producer.flush(15)
    assert len(errors) == 1 and errors[0] is not None
    admin = AdminClient(kafka_settings.client_config())
    assert missing not in admin.list_topics(timeout=10).topics


def test_an_unreachable_cluster_is_one_line() -> None:
    settings = KafkaSettings(bootstrap_servers="127.0.0.1:1")
    admin = AdminClient({**settings.client_config(), "socket.connection.setup.timeout.ms": 1000})
    with pytest.raises(KafkaUnavailable, match=r"^cannot reach Kafka at 127\.0\.0\.1:1: ") as err:
        check_reachable(admin, settings, timeout_s=2)
    assert "\n" not in str(err.value)
