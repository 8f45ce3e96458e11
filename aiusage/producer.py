"""``UsageProducer``: how applications publish usage events.

* An idempotent producer (``enable.idempotence``, ``acks=all``): the broker never
  stores a retried send twice.
* The key is ``organization_id``, so one organization's events stay in order on one
  partition.
* ``event_id`` is generated when the caller gives none; the id is returned so that a
  caller who resends after a crash can reuse it (the consumer collapses repeats).
* Delivery errors reach the caller: through ``on_delivery`` per event, and as
  ``DeliveryFailed`` from ``flush`` and ``close``.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Mapping
from types import TracebackType
from typing import Any

from confluent_kafka import KafkaError, Message, Producer

from aiusage.events import UsageEvent, encode_event, event_from_fields
from aiusage.settings import KafkaSettings

DeliveryCallback = Callable[[uuid.UUID | None, KafkaError | None], None]


class DeliveryFailed(Exception):
    """Some events were not acknowledged by the broker; ``failed`` maps id to reason."""

    def __init__(self, failed: dict[str, str]) -> None:
        first_id, first_reason = next(iter(failed.items()))
        super().__init__(
            f"{len(failed)} usage event(s) were not delivered; first {first_id}: {first_reason}"
        )
        self.failed = failed


class UsageProducer:
    def __init__(
        self,
        settings: KafkaSettings,
        *,
        linger_ms: int = 20,
        extra_config: Mapping[str, Any] | None = None,
    ) -> None:
        self.topic = settings.topic
        self._producer = Producer(
            {
                **settings.client_config(),
                "enable.idempotence": True,
                "acks": "all",
                "linger.ms": linger_ms,
                "compression.type": "lz4",
                "client.id": "aiusage-producer",
                **(extra_config or {}),
            }
        )
        self._lock = threading.Lock()
        self._failed: dict[str, str] = {}

    def send(
        self,
        event: UsageEvent | Mapping[str, Any],
        on_delivery: DeliveryCallback | None = None,
    ) -> uuid.UUID:
        """Queue one event; return its event_id. Invalid fields raise before anything is sent."""
        if not isinstance(event, UsageEvent):
            event = event_from_fields(**dict(event))
        self.send_raw(encode_event(event), event.organization_id, event.event_id, on_delivery)
        return event.event_id

    def send_raw(
        self,
        payload: bytes,
        key: str | bytes | None,
        event_id: uuid.UUID | None,
        on_delivery: DeliveryCallback | None = None,
    ) -> None:
        """Queue already-encoded bytes (for load generators and replays)."""

        def delivered(err: KafkaError | None, message: Message) -> None:
            if err is not None:
                with self._lock:
                    name = str(event_id) if event_id else f"offset-less message {id(message)}"
                    self._failed[name] = str(err.str())
            if on_delivery is not None:
                on_delivery(event_id, err)

        while True:
            try:
                self._producer.produce(self.topic, value=payload, key=key, on_delivery=delivered)
                break
            except BufferError:
                # The local queue is full: serve delivery reports until there is room.
                self._producer.poll(0.05)
        self._producer.poll(0)

    def flush(self, timeout_s: float = 30.0) -> None:
        """Wait for every queued event; raise DeliveryFailed for those that failed."""
        remaining = self._producer.flush(timeout_s)
        with self._lock:
            failed, self._failed = self._failed, {}
        if failed:
            raise DeliveryFailed(failed)
        if remaining:
            raise TimeoutError(f"{remaining} usage event(s) still queued after {timeout_s}s")

    def close(self, timeout_s: float = 30.0) -> None:
        self.flush(timeout_s)

    def __enter__(self) -> UsageProducer:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
