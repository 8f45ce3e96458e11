"""The ingest loop: consume, validate, batch, write, and only then commit.

Guarantees, each with a test:

* Offsets are committed only after the rows they cover are in ClickHouse and their
  dead letters are acknowledged by the broker. A crash anywhere replays at most the
  batch in flight, and a replayed event collapses on the raw log's key.
* A failing write (an outage) pauses the partitions and retries with back-off, holding
  the batch: no commit, nothing dead-lettered, nothing dropped. A write that fails for
  a reason a retry cannot fix stops the consumer without committing.
* A bad event goes to the dead-letter topic and never blocks its partition, within a
  limit that stops the consumer before a bug of ours can drain the topic.

Writes are pipelined: while one batch is written on the writer thread (ClickHouse
works outside the GIL), the next is read and validated. One batch at most is in
flight, and commits follow the order of the batches.
"""

from __future__ import annotations

import logging
import threading
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from concurrent.futures import wait as wait_for_futures
from datetime import timedelta
from typing import Any, Protocol, cast

from confluent_kafka import KafkaError, KafkaException, Message, TopicPartition

from aiusage.clock import Clock
from consumer.batch import Batch, BatchPolicy
from consumer.dlq import DlqDeliveryFailed, DlqLimitExceeded, DlqPolicy
from consumer.metrics import ConsumerMetrics
from consumer.processing import InvalidMessage, Limits, process_message, utc_now
from consumer.settings import ConsumerSettings
from consumer.writer import RowWriter, WriteFailed

log = logging.getLogger(__name__)

MAX_MESSAGES_PER_POLL = 10_000


class FatalWriteError(Exception):
    """A write failed for a reason that retrying cannot fix; nothing was committed."""


class DeadLetters(Protocol):
    def send(self, message: Message, error: InvalidMessage) -> None: ...
    def flush(self, timeout_s: float) -> None: ...
    def discard_pending(self) -> None: ...
    def close(self, timeout_s: float = 10) -> None: ...


class IngestLoop:
    def __init__(
        self,
        *,
        consumer: Any,
        topic: str,
        settings: ConsumerSettings,
        writer: RowWriter,
        dead_letters: DeadLetters,
        metrics: ConsumerMetrics,
        clock: Clock,
        executor: Executor | None = None,
    ) -> None:
        self._consumer = consumer
        self._executor = executor or ThreadPoolExecutor(1, thread_name_prefix="aiusage-writer")
        # The batch handed to the writer (in flight, or failed and waiting for a retry).
        self._pending: Batch | None = None
        self._inflight: Future[None] | None = None
        self._topic = topic
        self._settings = settings
        self._writer = writer
        self._dlq = dead_letters
        self._metrics = metrics
        self._clock = clock
        self._policy = BatchPolicy(
            settings.batch_max_rows, settings.batch_max_bytes, settings.batch_max_wait_s
        )
        self._dlq_policy = DlqPolicy(
            settings.dlq_max_consecutive, settings.dlq_max_ratio, settings.dlq_ratio_window
        )
        self._limits = Limits(settings.max_event_bytes, timedelta(seconds=settings.max_future_s))
        self._batch = Batch(topic)
        self._assignment: set[tuple[str, int]] = set()
        self._retry_at: float | None = None
        self._backoff = settings.backoff_initial_s
        self._outage_since: float | None = None
        self._last_error = ""
        self._lock = threading.Lock()
        self._heartbeat = clock.monotonic()
        self._running = False
        self._failed = False

    # --- health ---------------------------------------------------------------------

    def health(self) -> tuple[bool, dict[str, Any]]:
        """Unhealthy when the loop stopped turning or writes failed for stall_after_s."""
        now = self._clock.monotonic()
        with self._lock:
            details: dict[str, Any] = {
                "loop_age_s": round(now - self._heartbeat, 3),
                "outage_s": round(now - self._outage_since, 3) if self._outage_since else 0,
                "last_write_error": self._last_error,
                "partitions": sorted(f"{t}/{p}" for t, p in self._assignment),
            }
            stalled = self._outage_since is not None and (
                now - self._outage_since >= self._settings.stall_after_s
            )
            loop_stuck = now - self._heartbeat > max(30.0, 10 * self._settings.poll_timeout_s)
        return not (stalled or loop_stuck), details

    def ready(self) -> tuple[bool, dict[str, Any]]:
        with self._lock:
            ok = self._running and self._outage_since is None
            return ok, {"running": self._running, "paused": self._outage_since is not None}

    # --- the loop -------------------------------------------------------------------

    def run(self, stop: threading.Event) -> bool:
        """Consume until ``stop`` is set; return whether shutdown was clean (all committed).

        Raises DlqLimitExceeded or FatalWriteError after writing and committing what
        came before the failure (FatalWriteError: nothing more is committed).
        """
        self.start()
        try:
            while not stop.is_set():
                self.step()
        except DlqLimitExceeded:
            # Everything before the offending message is valid work: store and commit it.
            self._running = False
            self._drain(self._clock.monotonic() + self._settings.shutdown_timeout_s)
            self._close()
            raise
        except Exception:
            # Closing revokes the partitions: the batch must be dropped, not written.
            self._running = False
            self._failed = True
            self._close()
            raise
        self._running = False
        return self._shutdown()

    def start(self) -> None:
        """Join the group: subscribe with the rebalance callbacks."""
        self._consumer.subscribe(
            [self._topic], on_assign=self._on_assign, on_revoke=self._on_revoke,
            on_lost=self._on_lost,
        )  # fmt: skip
        self._running = True

    def step(self) -> None:
        """One turn: collect a finished write, start the next one if due (or retry after
        back-off), then read what the batch has room for."""
        now = self._clock.monotonic()
        with self._lock:
            self._heartbeat = now
        self._reap(block=False)
        if self._retry_at is not None:
            if now >= self._retry_at and self._inflight is None:
                self._submit()
        elif self._pending is None and self._policy.due(self._batch, now):
            self._dispatch()
        room = 0 if self._retry_at is not None else self._policy.room(self._batch)
        if room == 0 and self._inflight is not None:
            # The next batch is full: wait for the write in flight rather than read on.
            wait_for_futures([self._inflight], timeout=self._settings.poll_timeout_s)
            return
        messages = self._consumer.consume(
            num_messages=max(1, min(room, MAX_MESSAGES_PER_POLL)),
            timeout=self._settings.poll_timeout_s,
        )
        if messages:
            self._handle(messages)

    def _handle(self, messages: list[Message]) -> None:
        """Validate one poll's messages into the batch: the hot path, kept flat."""
        batch, limits, rows = self._batch, self._limits, self._batch.rows
        first, last = batch.first_offsets, batch.last_offsets
        now = utc_now(self._clock.time())
        if batch.opened_at is None:
            batch.opened_at = self._clock.monotonic()
        consumed = valid_run = size = 0
        try:
            for message in messages:
                error = message.error()
                if error is not None:
                    self._kafka_error(error)
                    continue
                value = message.value()
                # Set on every message that is not an error; the loop reads one topic.
                partition, offset = cast(tuple[int, int], (message.partition(), message.offset()))
                try:
                    rows.append(process_message(value, self._topic, partition, offset, limits, now))
                    valid_run += 1
                except InvalidMessage as invalid:
                    # The limit is checked before the offset is recorded: a message that
                    # trips it is neither dead-lettered nor committed.
                    self._dlq_policy.record_valid(valid_run)
                    valid_run = 0
                    where = f"{self._topic}/{partition}@{offset}"
                    self._dlq_policy.record_invalid(f"{where}: {invalid}")
                    self._dlq.send(message, invalid)
                    self._metrics.rejected.labels(invalid.kind).inc()
                if partition not in first:
                    first[partition] = offset
                last[partition] = offset
                consumed += 1
                size += len(value) if value else 0
        finally:
            self._dlq_policy.record_valid(valid_run)
            batch.messages += consumed
            batch.payload_bytes += size
            self._metrics.consumed.inc(consumed)

    def _kafka_error(self, error: KafkaError) -> None:
        if error.code() == KafkaError._PARTITION_EOF:
            return
        if error.fatal():
            raise KafkaException(error)
        log.warning("kafka: %s", error.str())

    # --- writing and committing -----------------------------------------------------

    def _dispatch(self) -> None:
        """Hand the current batch to the writer and start a new one."""
        self._pending, self._batch = self._batch, Batch(self._topic)
        self._submit()

    def _submit(self) -> None:
        """Write the pending batch on the writer thread, once its dead letters are acked."""
        assert self._pending is not None and self._inflight is None
        try:
            self._dlq.flush(self._settings.shutdown_timeout_s)
        except DlqDeliveryFailed as err:
            self._enter_outage(str(err))
            return
        self._inflight = self._executor.submit(self._write, self._pending)

    def _write(self, batch: Batch) -> None:
        started = self._clock.monotonic()
        self._writer.write(batch.rows, batch.dedup_token())
        self._metrics.insert_seconds.observe(self._clock.monotonic() - started)

    def _reap(self, *, block: bool) -> None:
        """Collect the write in flight: commit its batch, or back off, or give up."""
        future = self._inflight
        if future is None or not (block or future.done()):
            return
        self._inflight = None
        batch = self._pending
        assert batch is not None
        try:
            future.result()
        except WriteFailed as err:
            self._metrics.write_failures.labels(str(err.retryable).lower()).inc()
            if not err.retryable:
                raise FatalWriteError(f"writing to ClickHouse failed: {err}") from err
            self._enter_outage(str(err))
            return
        self._pending = None
        self._metrics.batch_rows.observe(len(batch.rows))
        self._metrics.inserted.inc(len(batch.rows))
        self._commit(batch)
        if self._retry_at is not None:
            log.info("writes succeed again after %.1fs; resumed", self._end_outage())

    def _drain(self, deadline: float) -> bool:
        """Write and commit everything read so far, retrying until ``deadline``.

        Returns whether nothing is left unwritten.
        """
        while True:
            self._reap(block=True)
            if self._retry_at is not None:
                if self._clock.monotonic() >= deadline:
                    return False
                if self._clock.monotonic() >= self._retry_at:
                    self._submit()
                else:
                    # Partitions are paused: poll serves the group's callbacks meanwhile.
                    self._consumer.poll(0.1)
            elif self._pending is None and not self._batch.empty:
                self._dispatch()
            elif self._pending is None:
                return True

    def _commit(self, batch: Batch) -> None:
        offsets = [
            TopicPartition(self._topic, partition, offset)
            for partition, offset in sorted(batch.next_offsets().items())
        ]
        try:
            self._consumer.commit(offsets=offsets, asynchronous=False)
        except KafkaException as err:
            # The rows are stored; the new owner of the partition reads them again and
            # they collapse on the raw log's key.
            log.warning("offset commit failed, the batch may be read again: %s", err)
            return
        self._metrics.last_commit.set(self._clock.time())

    def _enter_outage(self, reason: str) -> None:
        now = self._clock.monotonic()
        with self._lock:
            first = self._outage_since is None
            if first:
                self._outage_since = now
            self._last_error = reason
        if first:
            self._backoff = self._settings.backoff_initial_s
            self._pause()
            log.warning("write failed; pausing consumption and retrying: %s", reason)
        else:
            self._backoff = min(self._backoff * 2, self._settings.backoff_max_s)
            log.warning("write failed again; next try in %.1fs: %s", self._backoff, reason)
        self._retry_at = now + self._backoff
        self._metrics.paused.set(1)

    def _end_outage(self) -> float:
        """Resume the partitions and clear the back-off; return how long the outage lasted."""
        with self._lock:
            since = self._outage_since or self._clock.monotonic()
            self._outage_since = None
        self._retry_at = None
        self._resume()
        self._metrics.paused.set(0)
        return self._clock.monotonic() - since

    def _pause(self) -> None:
        if self._assignment:
            self._consumer.pause([TopicPartition(t, p) for t, p in self._assignment])

    def _resume(self) -> None:
        if self._assignment:
            self._consumer.resume([TopicPartition(t, p) for t, p in self._assignment])

    # --- rebalancing ----------------------------------------------------------------

    def _on_assign(self, consumer: Any, partitions: list[TopicPartition]) -> None:
        with self._lock:
            self._assignment = {(tp.topic, tp.partition) for tp in partitions}
        self._metrics.assigned.set(len(partitions))
        consumer.assign(partitions)
        if self._retry_at is not None:
            self._pause()
        log.info("assigned %s", sorted(self._assignment))

    def _on_revoke(self, consumer: Any, partitions: list[TopicPartition]) -> None:
        if not self._failed and self._retry_at is None:
            # One attempt, no back-off: a rebalance must not wait on an outage.
            try:
                self._drain(self._clock.monotonic())
            except FatalWriteError:
                self._failed = True
        if self._pending is not None or not self._batch.empty:
            # Not written: drop it uncommitted; the partitions' next owner reads it again.
            log.warning("dropping unwritten rows on revoke; they will be read again")
            self._drop_batch()
        with self._lock:
            self._assignment = set()
        self._metrics.assigned.set(0)
        log.info("revoked %d partitions", len(partitions))

    def _on_lost(self, consumer: Any, partitions: list[TopicPartition]) -> None:
        log.warning("lost %d partitions; dropping the uncommitted batch", len(partitions))
        self._drop_batch()
        with self._lock:
            self._assignment = set()
        self._metrics.assigned.set(0)

    def _drop_batch(self) -> None:
        if self._inflight is not None:
            wait_for_futures([self._inflight])
            self._inflight = None
        self._pending = None
        self._batch = Batch(self._topic)
        self._dlq.discard_pending()
        if self._retry_at is not None:
            self._end_outage()

    # --- shutdown -------------------------------------------------------------------

    def _shutdown(self) -> bool:
        clean = self._drain(self._clock.monotonic() + self._settings.shutdown_timeout_s)
        if not clean:
            log.error("shutdown: the last batch could not be written; it will be read again")
            self._drop_batch()
        self._close()
        return clean

    def _close(self) -> None:
        """Leave the group (nothing is committed here) and release the DLQ producer."""
        try:
            self._consumer.close()
        finally:
            self._dlq.close()
            self._executor.shutdown(wait=True)
