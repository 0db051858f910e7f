"""The Kafka-native runtime: the pipeline's processors on confluent-kafka, exactly once.

One consumer (group ``<prefix>worker``, range assignment, ``read_committed``) reads
``predictions``, ``labels``, their repartition topics and ``observations`` in batches; one
transactional producer produces what the stages emit. The runtime is split by job, one class
each:

- :mod:`~stream_app.runtimes.kafka.clients`: which topics, the clients' configuration, what
  their errors become;
- :mod:`~stream_app.runtimes.kafka.transactions`: the transactional producer, one retry helper
  for every transaction call, the ``send_offsets_to_transaction`` watchdog (librdkafka #5456,
  #5511), and what a commit that keeps failing the same way becomes (an ERROR with its cause,
  the ``stuck_commits`` counter);
- :mod:`~stream_app.runtimes.kafka.stores` (over :mod:`~stream_app.runtimes.kafka.changelog`):
  the join entries, detection state pieces and counters of the assigned partitions, their
  compacted changelogs (large values as chunks) and their restore;
- :mod:`~stream_app.runtimes.kafka.checkpoint`: every offset, and the commit in numbered steps;
- :mod:`~stream_app.runtimes.kafka.stages`: route, join, detect;
- :mod:`~stream_app.runtimes.kafka.live_feed`: committed state to Redis and Prometheus;
- :mod:`~stream_app.runtimes.kafka.clock_watch`: what the worker vouches for beyond its
  event-time clocks (partitions read together, an idle stream), for silences;
- this module: the loop, the rebalances, the rollback.

Every ``commit_interval_seconds`` (stretched under load) one Kafka transaction commits,
atomically, the outputs, the state changes and the input offsets (KIP-447: a worker that lost
its partitions is fenced). A partition assigned to the worker is restored from its changelog
partition before any of its records is processed; on revocation the open transaction is
committed first; a failed commit or a lost assignment rolls back to the last commit. After a
crash nothing committed is lost and nothing uncommitted is visible to ``read_committed``
readers: each labelled prediction yields one outcome record and each alert is on the alerts
topic once.

Only committed state reaches Redis and Prometheus (:mod:`~stream_app.runtimes.kafka.live_feed`).
"""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
import time
import uuid
from collections.abc import Callable

from confluent_kafka import Consumer, KafkaException, Message, TopicPartition

from stream_app.credential_watch import CredentialWatch
from stream_app.metrics import WorkerMetrics, serving_metrics
from stream_app.runtimes import LEVELS, LOG_FORMAT
from stream_app.runtimes.kafka.checkpoint import Checkpoint, commit_due, commit_interval
from stream_app.runtimes.kafka.clients import (
    ClientErrors,
    Layout,
    describe,
    make_consumer,
    producer_config,
)
from stream_app.runtimes.kafka.clock_watch import ClockWatch
from stream_app.runtimes.kafka.live_feed import LiveStateFeed
from stream_app.runtimes.kafka.stages import Stages
from stream_app.runtimes.kafka.stores import StateStores
from stream_app.runtimes.kafka.transactions import (
    CommitFailures,
    TransactionalProducer,
    until_done,
)
from stream_app.settings import Settings
from stream_app.topic_plan import ensure_worker_topics

log = logging.getLogger(__name__)

IDLE_WARNING_SECONDS = 60.0
POLL_WAIT_SECONDS = 0.05
"""How long a poll waits for records when none are queued (one that finds some returns them
at once: a batch is what arrived since the last, up to ``worker.batch_size``)."""


class KafkaWorker:
    """The Kafka-native worker of one process: :meth:`run` until :meth:`stop`."""

    def __init__(self, settings: Settings, metrics: WorkerMetrics) -> None:
        self.settings = settings
        self.metrics = metrics
        self.layout = layout = Layout.of(settings)
        self.app_id = layout.app_id
        self.stopping = False
        self.assigned: set[tuple[str, int]] = set()
        self.errors = ClientErrors()
        self.consumer = make_consumer(settings, layout.app_id, self.errors)
        tid = settings.worker.instance_id or f"{layout.app_id}-{uuid.uuid4().hex[:12]}"
        self.transactional_id = tid
        config = producer_config(settings, tid, self.errors)
        self.producer = TransactionalProducer(config, lambda: self.stopping)
        self.failures = CommitFailures()
        self.stores = StateStores(
            settings.kafka, layout.join_store, layout.detect_store, self.producer.send
        )
        self.stages = Stages(
            settings, layout, metrics, self.consumer, self.producer, self.stores, self.errors
        )
        self.checkpoint = Checkpoint(
            layout.names.observations,
            self.consumer,
            self.producer,
            self.stores,
            self.stages.detect,
        )
        self.stages.checkpoint = self.checkpoint
        self.feed = LiveStateFeed(settings, metrics, self.consumer, layout)
        self.credentials = CredentialWatch(settings.kafka)
        self.idle_check: tuple[float, asyncio.Task[bool]] | None = None
        """When the broker was asked whether the stream is idle, and its answer to come."""

    # -- rebalances (called from inside consume(), in its thread) ------------------------

    def _on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        log.info("assigned %s", describe(partitions))
        self._until_done("restoring the state", lambda: self._restore(partitions))
        self._until_done(
            "finding the committed offsets", lambda: self.checkpoint.find_starts(partitions)
        )
        self.assigned |= {(tp.topic, tp.partition) for tp in partitions}
        log.info("worker ready: %d partitions assigned and restored", len(self.assigned))

    def _on_revoke(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        log.info("revoked %s", describe(partitions))
        try:
            if self.checkpoint.commit():  # what was processed of them, before they move
                self.failures.succeeded()
        except KafkaException as exc:
            log.warning("commit before the rebalance failed; rolling back")
            self._failed(exc)
            self._lose(partitions)
            return
        self._forget(partitions)
        self.assigned -= {(tp.topic, tp.partition) for tp in partitions}

    def _on_lost(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        log.warning("lost %s (this worker was too slow or cut off)", describe(partitions))
        self._lose(partitions)

    def _lose(self, partitions: list[TopicPartition]) -> None:
        """Partitions gone without a commit: roll back what was processed since the last one
        (the next owner redoes it)."""
        self.assigned -= {(tp.topic, tp.partition) for tp in partitions}
        self._forget(partitions)
        self._abort()

    def _restore(self, partitions: list[TopicPartition]) -> None:
        layout = self.layout
        restored = self.stores.restore(
            {tp.partition for tp in partitions if tp.topic == layout.join_topic},
            {tp.partition for tp in partitions if tp.topic == layout.names.observations},
        )
        self.stages.join.revoke(restored.join_partitions)  # buffers rebuilt from the stores
        self.stages.local_joins |= restored.join_partitions  # joined here, not moved
        self.checkpoint.restored(restored.totals)

    def _forget(self, revoked: list[TopicPartition]) -> None:
        self.stores.forget(*self.stages.forget(revoked))
        self.checkpoint.forget(revoked)
        self.metrics.forget_model_gauges()

    # -- the loop -----------------------------------------------------------------------

    def stop(self) -> None:
        self.stopping = True

    async def run(self) -> None:
        """Process until :meth:`stop`; commit, flush Redis and leave the group on the way out."""
        settings, layout, stages = self.settings, self.layout, self.stages
        partitions = ensure_worker_topics(settings)  # missing topics created, others checked
        stages.laid_out(partitions)
        read = {topic: partitions[topic] for topic in layout.reading}
        self.clocks = ClockWatch(self.consumer, layout.names.inputs, read)
        self.consumer.subscribe(
            layout.reading,
            on_assign=self._on_assign,
            on_revoke=self._on_revoke,
            on_lost=self._on_lost,
        )
        log.info(
            "worker %s (Kafka-native runtime, transactional id %s) reading %s",
            self.app_id,
            self.transactional_id,
            ", ".join(layout.reading),
        )
        worker = settings.worker
        last_commit = last_flush = last_check = last_record = time.monotonic()
        least = interval = worker.commit_interval_seconds
        most = max(least, worker.max_commit_interval_seconds)
        flushing: asyncio.Task[bool] | None = None
        try:
            while not self.stopping:
                messages = await asyncio.to_thread(self._poll, stages.fetch_size)
                self.producer.poll(0)  # serves the producer's callbacks
                self.feed.count("unreadable_topic", self.errors.take_unreadable())
                self.feed.count("stuck_commits", self.failures.take_count())
                self.feed.publish(self.checkpoint.take_committed())
                if messages:
                    last_record = time.monotonic()
                    stages.process(messages)
                elif stages.held:  # a quiet partition holds the others back once
                    stages.release()
                stages.release_quiet()
                now = time.monotonic()
                if stages.detect.watching and self.clocks.due(now):
                    self._watch_clocks(now, last_record)
                behind = len(messages) >= stages.fetch_size  # a backlog
                alerting = self.checkpoint.alerting
                if commit_due(now - last_commit, interval, alerting=alerting, behind=behind):
                    await self._commit_in_thread()
                    last_commit, took = time.monotonic(), time.monotonic() - now
                    state = self.checkpoint.state_seconds
                    interval = commit_interval(took, state, least, most, behind=behind)
                if now - last_flush >= worker.redis_flush_seconds and (
                    flushing is None or flushing.done()
                ):
                    self.feed.refresh(stages.detect, self.assigned)
                    flushing = asyncio.create_task(self.feed.flush())
                    last_flush = now
                if now - last_check >= settings.kafka.credential_check_seconds:
                    last_check = now
                    await self.credentials.check()
                if now - last_record >= IDLE_WARNING_SECONDS:
                    self.feed.warn_idle(now - last_record, self.assigned)
                    last_record = now
        finally:
            await self._shut_down(flushing)

    def _watch_clocks(self, now: float, last_record: float) -> None:
        """Models whose partition's clock stopped: silent if the partitions are read together,
        or, by the wall clock, if the stream is idle (:mod:`.clock_watch`; the broker is asked
        beside the loop, and its answer counts only if nothing was read since)."""
        clocks, checkpoint, assigned = self.clocks, self.checkpoint, set(self.assigned)
        observations = self.layout.names.observations
        read = {**checkpoint.next_offsets}
        read.update(((observations, p), offset) for p, offset in checkpoint.detect_read.items())
        asked, idle = self.idle_check, False
        if asked is not None and asked[1].done():
            self.idle_check = None
            idle = asked[1].result() and last_record < asked[0]
        elif asked is None and self.settings.worker.wall_clock_silence:
            self._ask_if_idle(now, last_record, assigned, read)
        together = clocks.together(assigned, read)
        if idle or together:
            self.stages.watch_clocks(idle=idle, together=together)

    def _ask_if_idle(
        self,
        now: float,
        last_record: float,
        assigned: set[tuple[str, int]],
        read: dict[tuple[str, int], int],
    ) -> None:
        """Ask the broker, beside the loop, whether the stream is idle, when it is time to."""
        if self.clocks.idle_due(now, last_record):
            check = asyncio.to_thread(self.clocks.idle, assigned, read)
            self.idle_check = (now, asyncio.create_task(check))

    def _poll(self, most: int) -> list[Message]:
        """The records queued now, up to ``most``; if none, those that come within
        :data:`POLL_WAIT_SECONDS` (librdkafka's ``consume`` waits out its timeout unless it
        fills the batch)."""
        return self.consumer.consume(most, 0) or self.consumer.consume(most, POLL_WAIT_SECONDS)

    # -- commits and rollbacks ------------------------------------------------------------

    async def _commit_in_thread(self) -> None:
        """Commit; a failed commit is rolled back, and when commits keep failing the same way
        (:class:`~stream_app.runtimes.kafka.transactions.CommitFailures`) the next try waits."""
        try:
            committed = await asyncio.to_thread(self.checkpoint.commit)
        except KafkaException as exc:
            pause = self._failed(exc)
            await asyncio.to_thread(self._abort)
            deadline = time.monotonic() + pause
            while not self.stopping and time.monotonic() < deadline:
                await asyncio.sleep(0.2)
            return
        if committed:
            self.failures.succeeded()

    def _failed(self, exc: KafkaException) -> float:
        """Record a failed commit with its cause; the pause before the next try."""
        self.producer.poll(0)  # the delivery reports that name the record that failed
        return self.failures.failed(exc.args[0], self.producer.failed_delivery)

    def _abort(self) -> None:
        """Roll back to the last committed state: abort the transaction, drop what was
        processed since, restore the assigned partitions and seek to their committed offsets."""
        self.producer.abort()
        self.checkpoint.discard()
        assigned = [TopicPartition(t, p) for t, p in sorted(self.assigned)]
        self._forget(assigned)
        self.stages.effects.clear()
        if assigned:
            self._until_done("restoring the state", lambda: self._restore(assigned))
            self._until_done(
                "going back to the committed offsets", lambda: self.checkpoint.rewind(assigned)
            )

    def _until_done(self, what: str, step: Callable[[], None]) -> None:
        until_done(what, step, lambda: self.stopping)

    async def _shut_down(self, flushing: asyncio.Task[bool] | None) -> None:
        try:  # a stopping worker does not linger
            await asyncio.to_thread(self.checkpoint.commit, 1)
        except KafkaException as exc:
            log.warning("final commit failed (%s); the next worker redoes it", exc)
        self.feed.publish(self.checkpoint.take_committed())
        if flushing is not None:
            await flushing
        self.feed.refresh(self.stages.detect, self.assigned, seconds=float("inf"))  # all due
        await self.feed.flush()
        await asyncio.to_thread(self.consumer.close)
        self.producer.flush(10)
        log.info("worker stopped")


def run_kafka_worker(settings: Settings, metrics: WorkerMetrics, loglevel: str = "info") -> None:
    """Run the Kafka-native worker in the foreground until SIGINT or SIGTERM, logging at
    ``loglevel`` to stderr and serving ``metrics`` (its runner in
    :data:`stream_app.runtimes.RUNTIMES`)."""
    logging.basicConfig(stream=sys.stderr, level=LEVELS[loglevel], format=LOG_FORMAT)
    with serving_metrics(metrics.registry, settings.worker):
        _run(settings, metrics)


def _run(settings: Settings, metrics: WorkerMetrics) -> None:
    worker = KafkaWorker(settings, metrics)

    async def main() -> None:
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, worker.stop)
        await worker.run()

    asyncio.run(main())
    worker.credentials.raise_failure()
