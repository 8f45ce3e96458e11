"""Creating the project's topics with the admin client (brokers do not auto-create them)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient
from confluent_kafka.cimpl import NewTopic

from aiusage.errors import KafkaUnavailable
from aiusage.settings import KafkaSettings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TopicReport:
    created: tuple[str, ...]
    existing: tuple[str, ...]


def admin_client(settings: KafkaSettings) -> AdminClient:
    return AdminClient(settings.client_config())


def check_reachable(admin: AdminClient, settings: KafkaSettings, timeout_s: float = 10.0) -> None:
    """Fetch cluster metadata once, or raise a one-line KafkaUnavailable."""
    try:
        admin.list_topics(timeout=timeout_s)
    except KafkaException as err:
        raise KafkaUnavailable(
            f"cannot reach Kafka at {settings.bootstrap_servers}: {_reason(err)}"
        ) from err


def ensure_topics(
    settings: KafkaSettings,
    topics: Sequence[str] | None = None,
    timeout_s: float = 30.0,
) -> TopicReport:
    """Create the usage topic and its DLQ (or ``topics``) when missing.

    Topics that exist are left alone; one whose partition count differs from the
    setting is reported in the log, never altered.
    """
    names = list(topics) if topics is not None else [settings.topic, settings.dlq_topic]
    admin = admin_client(settings)
    check_reachable(admin, settings)
    metadata = admin.list_topics(timeout=timeout_s).topics
    existing = [name for name in names if name in metadata]
    for name in existing:
        count = len(metadata[name].partitions)
        if count != settings.partitions:
            log.warning(
                "topic %s has %d partitions, the setting asks for %d; left as it is",
                name,
                count,
                settings.partitions,
            )
    missing = [name for name in names if name not in metadata]
    created = []
    if missing:
        futures = admin.create_topics(
            [NewTopic(name, settings.partitions, settings.replication_factor) for name in missing],
            request_timeout=timeout_s,
        )
        for name, future in futures.items():
            try:
                future.result(timeout=timeout_s)
                created.append(name)
                log.info("created topic %s with %d partitions", name, settings.partitions)
            except KafkaException as err:
                if err.args and err.args[0].code() == KafkaError.TOPIC_ALREADY_EXISTS:
                    existing.append(name)
                    continue
                raise KafkaUnavailable(f"cannot create topic {name}: {_reason(err)}") from err
    return TopicReport(created=tuple(created), existing=tuple(existing))


def delete_topics(settings: KafkaSettings, topics: Sequence[str], timeout_s: float = 30.0) -> None:
    admin = admin_client(settings)
    for name, future in admin.delete_topics(list(topics), request_timeout=timeout_s).items():
        try:
            future.result(timeout=timeout_s)
        except KafkaException as err:
            if err.args and err.args[0].code() == KafkaError.UNKNOWN_TOPIC_OR_PART:
                continue
            raise KafkaUnavailable(f"cannot delete topic {name}: {_reason(err)}") from err


def _reason(err: KafkaException) -> str:
    if err.args and isinstance(err.args[0], KafkaError):
        return str(err.args[0].str())
    return " ".join(str(err).split())
