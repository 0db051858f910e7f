"""The Kafka-native runtime: the pipeline's processors on confluent-kafka, exactly once.

One consumer (group ``<prefix>worker``, range assignment, ``read_committed``) reads
``predictions``, ``labels``, their repartition topics ``<app id>-predictions-repartition`` and
``<app id>-labels-repartition``, and ``observations`` in batches.
Three stages, each a hop through Kafka:

- **route**: each input record, as it came, is written to its side's repartition topic on the
  partition Kafka's default partitioner gives its key (:func:`pipeline.partitioner.partition_for`),
  with its origin in a ``driftstream-origin`` header. Both sides of a request meet on one
  partition whatever partitioner, and however many partitions, the producers used. With
  ``join.repartition`` false the join reads the inputs themselves instead (co-partitioned by
  the producers' promise; records off their partition are counted).
- **join**: the repartition records go through the :class:`~pipeline.join.JoinProcessor`,
  one join buffer per repartition partition;
- **detect**: observations go through the :class:`~pipeline.detect.DetectProcessor`.

The route and join stages take their records merged by event time across partitions
(:class:`~pipeline.order.EventTimeMerge`; the route by Kafka timestamp, the join by the events'
own). What the stages emit is produced by one transactional producer. Every
``commit_interval_seconds`` one Kafka transaction commits, atomically:

- the outputs (repartitioned inputs, observations, alerts, dead letters);
- the state changes: join entries and counters to ``<app id>-join-store``, the snapshots of
  the models that changed and their counters to ``<app id>-detect-store``
  (:mod:`stream_app.runtimes.kafka.changelog`);
- the input offsets (``send_offsets_to_transaction`` with the consumer's group metadata, so a
  worker that lost its partitions in a rebalance is fenced: KIP-447).

A partition assigned to the worker is restored from its changelog partition before any of its
records is processed; on revocation the open transaction is committed first. After a crash
nothing committed is lost and nothing uncommitted is visible to ``read_committed`` readers: each
labelled prediction yields one outcome record and each alert is on the alerts topic once.

Only committed state reaches Redis and Prometheus: after each commit the counters of the
partitions that changed are written as exact per-partition totals (Redis sums them), with
the alerts and the summaries of the models that changed.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import signal
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import redis.asyncio
from confluent_kafka import (
    OFFSET_BEGINNING,
    Consumer,
    KafkaError,
    KafkaException,
    Message,
    Producer,
    TopicPartition,
)

from detectors.config import DetectorConfig
from pipeline.dead_letters import cut
from pipeline.detect import DetectProcessor
from pipeline.effects import Effects, InputRecord
from pipeline.join import JoinProcessor
from pipeline.order import EventTimeMerge
from pipeline.partitioner import partition_for
from pipeline.state import ChangeTrackingStore
from schemas.errors import InvalidEvent
from schemas.events import DriftAlert, LabelEvent, PredictionEvent
from stream_app.credential_watch import CredentialWatch
from stream_app.live_state import LiveStateKeys
from stream_app.metrics import MeteredLiveState, WorkerMetrics
from stream_app.runtimes.kafka.changelog import (
    COUNTS_KEY,
    JOIN_ENTRY,
    Totals,
    encode_totals,
    join_entries,
    restore,
)
from stream_app.sampled_log import SampledLog
from stream_app.settings import Settings
from stream_app.topic_plan import ensure_worker_topics
from stream_app.topics import Topics, app_id, repartition_topics, store_topics

log = logging.getLogger(__name__)

IDLE_WARNING_SECONDS = 60.0
COMMIT_ATTEMPTS = 10
ABORT_ATTEMPTS = 3
UNREADABLE = {KafkaError.UNKNOWN_TOPIC_OR_PART, KafkaError.TOPIC_AUTHORIZATION_FAILED}
"""Errors that mean the worker cannot read a topic it should."""
OFFSETS_DEADLINE = 40.0
FETCH_BYTES_PER_PARTITION = 64 * 1024
EARLIEST = datetime.min.replace(tzinfo=UTC)

Parsed = tuple[InputRecord, PredictionEvent | LabelEvent | InvalidEvent]
Held = tuple[tuple[str, int], Parsed]  # the Kafka partition a join record was read from
ORIGIN = "driftstream-origin"  # where a repartition record was first written
SIZES = "driftstream-sizes"  # key and value sizes of an input cut to be moved
MOVED = (ORIGIN, SIZES)


@dataclass
class Committed:
    """What one transaction made durable, for the live view: the alerts it published, the
    totals of the partitions whose counters changed, the models whose state changed."""

    alerts: list[DriftAlert] = field(default_factory=list)
    totals: dict[str, dict[tuple[str | None, str], int]] = field(default_factory=dict)
    models: set[str] = field(default_factory=set)
    restored: bool = False


class KafkaWorker:
    """The Kafka-native worker of one process: :meth:`run` until :meth:`stop`."""

    def __init__(self, settings: Settings, metrics: WorkerMetrics) -> None:
        self.settings = settings
        self.metrics = metrics
        worker = settings.worker
        self.names = Topics(settings.topics.prefix)
        self.app_id = app_id(settings)
        self.join_store, self.detect_store = store_topics(self.app_id)
        self.hop = settings.join.repartition
        self.inputs = self.names.inputs
        self.repartitions = repartition_topics(self.app_id, self.names) if self.hop else {}
        self.side_of = {moved: topic for topic, moved in self.repartitions.items()}
        # the topic whose partitions own the join buffers
        self.join_topic = self.repartitions.get(self.names.predictions, self.names.predictions)
        self.repartition_partitions = 0
        self.reading: list[str] = []
        self.output_topics = {
            "observations": self.names.observations,
            "alerts": self.names.alerts,
            "deadletter": self.names.deadletter,
        }
        join = settings.join
        self.stores: dict[int, ChangeTrackingStore[Any]] = {}
        self.join = JoinProcessor(
            self.names.predictions,
            ttl_seconds=join.ttl_seconds,
            max_pending=join.max_pending,
            max_future_seconds=join.max_future_seconds,
            store_for=self._join_store_of,
        )
        self.snapshots: dict[str, bytes] = {}
        self.detect = DetectProcessor(
            DetectorConfig.from_settings(settings.detectors),
            load=self.snapshots.get,
            lateness_seconds=worker.lateness_seconds,
        )
        self.totals: dict[str, Totals] = {}
        self.changed_totals: set[str] = set()
        self.effects = Effects()
        self.route_merge: EventTimeMerge[tuple[str, int], Message] = EventTimeMerge()
        self.merge: EventTimeMerge[tuple[str, int], Held] = EventTimeMerge()
        self.next_offsets: dict[tuple[str, int], int] = {}
        self.positions: dict[tuple[str, int], int] = {}
        self.detect_read: dict[int, int] = {}  # observations partition -> next offset read
        self.detect_committed: dict[int, int] = {}
        self.assigned: set[tuple[str, int]] = set()
        self.uncommitted = Committed()
        self.committed: list[Committed] = []
        self.summaries_due: set[str] = set()
        self.stopping = False
        self.transactional_id = worker.transactional_id or f"{self.app_id}-{uuid.uuid4().hex[:12]}"
        self.consumer = self._consumer()
        self.producer = self._producer()
        client = redis.asyncio.Redis.from_url(
            settings.redis.url,
            socket_timeout=1.0,
            socket_connect_timeout=1.0,
            **settings.redis.client_kwargs(),
        )
        self.state = MeteredLiveState(
            client, LiveStateKeys(settings.redis.key_prefix), metrics=metrics
        )
        self.dead_letter_log = SampledLog(log, "dead-lettered")
        self.misplaced_log = SampledLog(log, "input records on the wrong partition", 60.0, 30)
        self.unreadable_log = SampledLog(log, "cannot read", 30.0, logging.ERROR)
        self.unreadable = 0  # refused reads since the loop last counted them (any thread)
        self.credentials = CredentialWatch(settings.kafka)

    # -- clients -------------------------------------------------------------------------

    def _consumer(self) -> Consumer:
        session_ms = int(self.settings.worker.session_timeout_seconds * 1000)
        return Consumer(
            {
                **self.settings.kafka.client_config(),
                "group.id": self.app_id,
                "isolation.level": "read_committed",
                "enable.auto.commit": False,
                "auto.offset.reset": "earliest",
                "partition.assignment.strategy": "range",  # co-partitioned inputs together
                "session.timeout.ms": session_ms,
                "heartbeat.interval.ms": max(1000, session_ms // 10),
                "max.poll.interval.ms": max(300_000, session_ms),
                # small fetches per partition: a batch holds every partition's records of about
                # the same time (EventTimeMerge), not one partition's long run
                "max.partition.fetch.bytes": FETCH_BYTES_PER_PARTITION,
                "error_cb": self._client_error,
            }
        )

    def _producer(self) -> Producer:
        producer = Producer(
            {
                **self.settings.kafka.client_config(),
                "transactional.id": self.transactional_id,
                "transaction.timeout.ms": int(
                    self.settings.worker.transaction_timeout_seconds * 1000
                ),
                "linger.ms": 5,
                "compression.type": "lz4",
                "queue.buffering.max.messages": 1_000_000,
                "error_cb": self._client_error,
            }
        )
        self._until_done(
            "starting the transactional producer", lambda: producer.init_transactions(30)
        )
        producer.begin_transaction()
        return producer

    def _client_error(self, error: KafkaError) -> None:
        if error.code() in UNREADABLE:  # e.g. a topic deleted under the worker
            self._unreadable("a topic", error.str())
        elif error.code() == KafkaError._AUTHENTICATION:
            log.error("Kafka refused the login: %s", error.str())
        elif error.fatal():
            log.error("Kafka client fatal error: %s", error.str())
        else:
            log.info("Kafka client: %s", error.str())

    # -- state --------------------------------------------------------------------------

    def _join_store_of(self, partition: int) -> ChangeTrackingStore[Any]:
        store = self.stores.get(partition)
        if store is None:
            store = self.stores[partition] = ChangeTrackingStore()
        return store

    def _restore(self, assigned: list[TopicPartition]) -> None:
        """Fill the state of newly assigned partitions from their changelogs."""
        inputs = {tp.partition for tp in assigned if tp.topic == self.join_topic}
        observations = {tp.partition for tp in assigned if tp.topic == self.names.observations}
        started = time.monotonic()
        kafka = self.settings.kafka
        records = 0
        for partition, part in restore(kafka, self.join_store, inputs).items():
            records += part.records
            self.stores[partition] = ChangeTrackingStore(join_entries(part))
            self.join.revoke([partition])  # its buffer is rebuilt from the restored store
            self._restore_totals(f"i{partition}", part.totals)
        for partition, part in restore(kafka, self.detect_store, observations).items():
            records += part.records
            for key, value in part.values.items():
                self.snapshots[key.decode()] = value
            self._restore_totals(f"o{partition}", part.totals)
        log.info(
            "restored %d input and %d observations partitions from %d changelog records in %.1fs",
            len(inputs),
            len(observations),
            records,
            time.monotonic() - started,
        )

    def _restore_totals(self, source: str, totals: Totals) -> None:
        self.totals[source] = totals
        self.committed.append(Committed(totals={source: dict(totals)}, restored=True))

    def _forget(self, revoked: list[TopicPartition]) -> None:
        self.merge.forget((tp.topic, tp.partition) for tp in revoked)
        self.route_merge.forget((tp.topic, tp.partition) for tp in revoked)
        for tp in revoked:
            self.next_offsets.pop((tp.topic, tp.partition), None)
            if tp.topic == self.names.observations:
                self.detect_read.pop(tp.partition, None)
                self.detect_committed.pop(tp.partition, None)
        inputs = {tp.partition for tp in revoked if tp.topic == self.join_topic}
        observations = {tp.partition for tp in revoked if tp.topic == self.names.observations}
        self.join.revoke(inputs)
        for partition in inputs:
            self.stores.pop(partition, None)
            self.totals.pop(f"i{partition}", None)
        gone = [m for m, p in self.detect.partitions.items() if p in observations]
        self.detect.revoke(observations)
        for model_id in gone:
            self.snapshots.pop(model_id, None)
        for partition in observations:
            self.totals.pop(f"o{partition}", None)
        self.metrics.forget_model_gauges()

    # -- rebalances (called from inside consume(), in its thread) ------------------------

    def _on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        log.info("assigned %s", _describe(partitions))
        self._until_done("restoring the state", lambda: self._restore(partitions))
        self._until_done("finding the committed offsets", lambda: self._find_starts(partitions))
        self.assigned |= {(tp.topic, tp.partition) for tp in partitions}
        log.info("worker ready: %d partitions assigned and restored", len(self.assigned))

    def _find_starts(self, partitions: list[TopicPartition]) -> None:
        """Where reading of the merged partitions (route and join stages) starts: the committed
        offsets, else the first."""
        inputs = [tp for tp in partitions if tp.topic != self.names.observations]
        for tp in self.consumer.committed(inputs, timeout=60) if inputs else []:
            start = tp.offset
            if start < 0:
                start, _high = self.consumer.get_watermark_offsets(tp, timeout=30)
            self.next_offsets[(tp.topic, tp.partition)] = start

    def _waiting(self, merge: EventTimeMerge[tuple[str, int], Any]) -> list[tuple[str, int]]:
        """The partitions of ``merge``'s stage with nothing held whose records are on their way
        (the consumer's position, which steps over transaction markers, is behind the end the
        last fetch saw)."""
        route = merge is self.route_merge
        idle = [
            TopicPartition(*key)
            for key in self.next_offsets
            if (key[0] in self.repartitions) == route and merge.latest(key) is None
        ]
        waiting = []
        for tp in self.consumer.position(idle) if idle else []:
            key = (tp.topic, tp.partition)
            position = tp.offset if tp.offset >= 0 else self.next_offsets[key]
            _low, high = self.consumer.get_watermark_offsets(tp, cached=True)
            if high > position:
                waiting.append(key)
        return waiting

    def _on_revoke(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        log.info("revoked %s", _describe(partitions))
        try:
            self._commit()  # what was processed of them is committed before they move
        except KafkaException as exc:
            log.warning("commit before the rebalance failed (%s); rolling back", exc)
            self._lose(partitions)
            return
        self._forget(partitions)
        self.assigned -= {(tp.topic, tp.partition) for tp in partitions}

    def _on_lost(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        log.warning("lost %s (this worker was too slow or cut off)", _describe(partitions))
        self._lose(partitions)

    def _lose(self, partitions: list[TopicPartition]) -> None:
        """Partitions gone without a commit: roll back what was processed since the last one
        (the next owner redoes it)."""
        self.assigned -= {(tp.topic, tp.partition) for tp in partitions}
        self._forget(partitions)
        self._abort()

    # -- the loop -----------------------------------------------------------------------

    def stop(self) -> None:
        self.stopping = True

    async def run(self) -> None:
        """Process until :meth:`stop`; commit, flush Redis and leave the group on the way out."""
        settings = self.settings
        reading = self.reading = self._create_topics()
        self.consumer.subscribe(
            reading, on_assign=self._on_assign, on_revoke=self._on_revoke, on_lost=self._on_lost
        )
        log.info(
            "worker %s (Kafka-native runtime, transactional id %s) reading %s",
            self.app_id,
            self.transactional_id,
            ", ".join(reading),
        )
        worker = settings.worker
        last_commit = last_flush = last_check = time.monotonic()
        last_record = time.monotonic()
        flushing: asyncio.Task[bool] | None = None
        try:
            while not self.stopping:
                messages = await asyncio.to_thread(self.consumer.consume, worker.batch_size, 0.05)
                self.producer.poll(0)  # serves the producer's error callback
                if self.unreadable:
                    refused, self.unreadable = self.unreadable, 0
                    self.state.count(None, "unreadable_topic", refused)
                self._publish_committed()
                if messages:
                    last_record = time.monotonic()
                    self._process(messages)
                elif self.merge.held or self.route_merge.held:  # a quiet partition holds
                    self._release(self.effects)  # the others back once
                self.detect.release_quiet(self.effects)
                if self.effects.changed_models:
                    self._produce(self.effects)
                now = time.monotonic()
                if now - last_commit >= worker.commit_interval_seconds:
                    await self._commit_in_thread()
                    last_commit = now
                if now - last_flush >= worker.redis_flush_seconds and (
                    flushing is None or flushing.done()
                ):
                    self._refresh_live_state()
                    flushing = asyncio.create_task(self.state.flush())
                    last_flush = now
                if now - last_check >= settings.kafka.credential_check_seconds:
                    last_check = now
                    await self.credentials.check()
                if now - last_record >= IDLE_WARNING_SECONDS:
                    self._warn_idle(now - last_record)
                    last_record = now
        finally:
            await self._shut_down(flushing)

    def _create_topics(self) -> list[str]:
        """Create the topics that are missing and check the ones that exist
        (:func:`~stream_app.topic_plan.ensure_worker_topics`); the topics to read."""
        counts = ensure_worker_topics(self.settings)
        inputs = {topic: counts[topic] for topic in self.inputs}
        log.info("input partitions: %s", ", ".join(f"{t} {n}" for t, n in inputs.items()))
        if not self.hop:
            self.join.input_partitions = inputs
        self.repartition_partitions = counts[self.join_topic]
        return [*self.inputs, *self.repartitions.values(), self.names.observations]

    def _process(self, messages: list[Message]) -> None:
        effects, now = self.effects, datetime.now(UTC)
        runs: dict[tuple[str, int], list[tuple[datetime, Held]]] = {}
        route_runs: dict[tuple[str, int], list[tuple[datetime, Message]]] = {}
        taken = {"route": 0, "join": 0, "detect": 0}
        oldest: dict[str, float] = {}
        for message in messages:
            if message.error() is not None:
                self._message_error(message)
                continue
            topic, partition, offset = message.topic(), message.partition(), message.offset()
            assert topic is not None
            assert partition is not None
            assert offset is not None
            kind, ms = message.timestamp()
            timestamp = ms / 1000 if kind else None
            if topic == self.names.observations:
                stage = "detect"
            else:
                stage = "route" if topic in self.repartitions else "join"
            taken[stage] += 1
            if timestamp is not None and timestamp < oldest.get(stage, 1e18):
                oldest[stage] = timestamp
            key = (topic, partition)
            record = InputRecord(
                topic, partition, offset, message.key(), message.value(), timestamp
            )
            if stage == "route":  # by the events' own time: a burst shares Kafka timestamps
                route_run = route_runs.setdefault(key, [])
                at = _event_time(self.join.parse(record, now), route_run, self.route_merge, key)
                route_run.append((at, message))
            elif stage == "join":
                if (side := self.side_of.get(topic)) is not None:  # a repartition topic
                    record = _moved(record, side, message)
                parsed = self.join.parse(record, now)
                run = runs.setdefault(key, [])
                run.append((_event_time(parsed, run, self.merge, key), (key, (record, parsed))))
            else:
                self.detect.process(record, effects)
                self.detect_read[partition] = offset + 1
        for stage, n in taken.items():
            if n:
                self.metrics.consumed_batch(stage, n, oldest.get(stage))
        for key, route_run in route_runs.items():
            self.route_merge.add(key, route_run)
            self.next_offsets[key] = (route_run[-1][1].offset() or 0) + 1
        for key, run in runs.items():
            self.merge.add(key, run)
            self.next_offsets[key] = run[-1][1][1][0].offset + 1
        self._release(effects)

    def _release(self, effects: Effects) -> None:
        """Route, then join, the records every partition of the stage has caught up with, in
        event-time order; then produce what came of the whole batch."""
        for message in self.route_merge.release(waiting=self._waiting(self.route_merge)):
            self._route(message)
        for key, (record, parsed) in self.merge.release(waiting=self._waiting(self.merge)):
            self.join.apply(record, parsed, effects)
            self.positions[key] = record.offset + 1
        self._produce(effects)

    def _route(self, message: Message) -> None:
        """Write one input record, as it came, to the repartition partition of its key."""
        topic, partition, offset = message.topic(), message.partition(), message.offset()
        assert topic is not None
        assert partition is not None
        assert offset is not None
        key, value = message.key(), message.value()
        headers = [*(message.headers() or []), (ORIGIN, f"{topic}/{partition}/{offset}".encode())]
        if (smaller := cut(key, value)) is not None:  # too big to send on whole
            headers.append((SIZES, f"{len(key or b'')} {len(value or b'')}".encode()))
            key, value = smaller
        kind, ms = message.timestamp()
        self._send(
            self.repartitions[topic],
            key,
            value,
            partition=partition_for(message.key() or b"", self.repartition_partitions),
            headers=headers,
            **({"timestamp": ms} if kind else {}),
        )
        self.positions[(topic, partition)] = offset + 1

    def _produce(self, effects: Effects) -> None:
        """Produce the outputs in the open transaction and fold the counts into the state."""
        topics = self.output_topics
        for output in effects.outputs:
            if output.stream == "deadletter":
                headers = dict(output.headers or [])
                self.dead_letter_log.record(
                    headers["driftstream-source"].decode(), headers["driftstream-reason"].decode()
                )
            self._send(topics[output.stream], output.key, output.value, headers=output.headers)
        for (model_id, name, source), n in effects.counts.items():
            if name == "wrong_partition":
                self.misplaced_log.record(
                    f"({n} on join partition {source[1:]})",
                    "their keys belong elsewhere by Kafka's default partitioner (murmur2), so "
                    "they may never meet their other half: have every producer key by "
                    "request_id with that partitioner (librdkafka and kcat: "
                    "partitioner=murmur2_random), or set join.repartition true",
                )
            self.totals.setdefault(source, Counter())[(model_id, name)] += n
            self.changed_totals.add(source)
        self.uncommitted.models |= effects.changed_models
        self.uncommitted.alerts += effects.alerts
        effects.clear()

    def _send(self, topic: str, key: bytes | None, value: bytes | None, **kwargs: Any) -> None:
        while True:
            try:
                self.producer.produce(topic, value, key, **kwargs)
                return
            except BufferError:  # the local queue is full: let it drain
                self.producer.poll(0.05)

    def _commit(self, attempts: int = COMMIT_ATTEMPTS) -> None:
        """Write the state changes and the offsets into the open transaction and commit it
        (trying a timed-out commit again, ``attempts`` times in all)."""
        self._detect_offsets()
        if not self.positions and not self.changed_totals and not self.detect.changed:
            return
        for partition, store in self.stores.items():
            for key, entry in store.take_changes().items():
                value = None if entry is None else JOIN_ENTRY.dump_json(entry)
                self._send(self.join_store, key.encode(), value, partition=partition)
        for partition, model_id, snapshot in self.detect.take_snapshots():
            self.snapshots[model_id] = snapshot
            self._send(self.detect_store, model_id.encode(), snapshot, partition=partition)
        for source in self.changed_totals:
            if (totals := self.totals.get(source)) is not None:
                topic = self.join_store if source[0] == "i" else self.detect_store
                self._send(topic, COUNTS_KEY, encode_totals(totals), partition=int(source[1:]))
        offsets = [TopicPartition(t, p, o) for (t, p), o in self.positions.items()]
        if offsets:
            self._send_offsets(offsets)
        for attempt in range(1, attempts + 1):
            try:
                self.producer.commit_transaction(30)
                break
            except KafkaException as exc:
                error: KafkaError = exc.args[0]
                if attempt == attempts or not error.retriable() or error.txn_requires_abort():
                    raise
                log.warning("committing the transaction: %s; trying again", error.str())
        committed, self.uncommitted = self.uncommitted, Committed()
        for source in self.changed_totals:
            if (totals := self.totals.get(source)) is not None:
                committed.totals[source] = dict(totals)
        self.committed.append(committed)
        self.changed_totals.clear()
        observations = self.names.observations
        self.detect_committed |= {p: o for (t, p), o in self.positions.items() if t == observations}
        self.positions.clear()
        self.producer.begin_transaction()

    def _detect_offsets(self) -> None:
        """Put the observations offsets that moved into the commit: what was read, but no
        further than the oldest record a model holds (read again after a crash)."""
        for partition, read in self.detect_read.items():
            held = self.detect.oldest_held(partition)
            offset = read if held is None else held
            if self.detect_committed.get(partition) != offset:
                self.positions[(self.names.observations, partition)] = offset

    def _send_offsets(self, offsets: list[TopicPartition]) -> None:
        """``send_offsets_to_transaction``, given up after ``OFFSETS_DEADLINE`` seconds: the
        call can block past its own timeout while the group coordinator restarts (librdkafka
        issues #5456 and #5511, seen here in the broker-restart fault test). Given up, the
        producer is replaced (same transactional id: the new one fences the old and ends its
        transaction) and the commit fails, so the caller rolls back."""
        producer, group = self.producer, self.consumer.consumer_group_metadata()
        failures: list[BaseException] = []

        def send() -> None:
            try:
                producer.send_offsets_to_transaction(offsets, group, 30)
            except BaseException as exc:  # handed to the committing thread below
                failures.append(exc)

        sender = threading.Thread(target=send, name="send-offsets", daemon=True)
        sender.start()
        sender.join(OFFSETS_DEADLINE)
        if sender.is_alive():
            log.warning(
                "sending the offsets to the transaction hung for %.0fs; replacing the producer",
                OFFSETS_DEADLINE,
            )
            self.producer = self._producer()
            raise KafkaException(KafkaError(KafkaError._TIMED_OUT, "send_offsets hung"))
        if failures:
            raise failures[0]

    async def _commit_in_thread(self) -> None:
        try:
            await asyncio.to_thread(self._commit)
        except KafkaException as exc:
            log.warning("transaction failed (%s); rolling back to the last commit", exc)
            await asyncio.to_thread(self._abort)

    def _abort(self) -> None:
        """Roll back to the last committed state: abort the transaction, drop what was
        processed since, restore the assigned partitions and seek to their committed offsets."""
        for attempt in itertools.count(1):
            if self.stopping:
                break
            try:
                self.producer.abort_transaction(30)
                self.producer.begin_transaction()
                break
            except KafkaException as exc:
                error: KafkaError = exc.args[0]
                if error.retriable() and not error.fatal() and attempt < ABORT_ATTEMPTS:
                    log.warning("aborting the transaction: %s; trying again", error.str())
                    continue
                # a producer whose coordinator connection never came back (seen after a broker
                # restart) times out for ever: a new one with the same id fences it
                log.warning("producer failed (%s); starting a new one", error.str())
                self.producer = self._producer()  # same id: fences the old one, ends its txn
                break
        self.uncommitted = Committed()
        assigned = [TopicPartition(t, p) for t, p in sorted(self.assigned)]
        self._forget(assigned)
        self.positions.clear()
        self.changed_totals.clear()
        self.effects.clear()
        if assigned:
            self._until_done("restoring the state", lambda: self._restore(assigned))
            self._until_done("going back to the committed offsets", lambda: self._rewind(assigned))

    def _rewind(self, assigned: list[TopicPartition]) -> None:
        for tp in self.consumer.committed(assigned, timeout=30):
            offset = tp.offset if tp.offset >= 0 else OFFSET_BEGINNING
            self.consumer.seek(TopicPartition(tp.topic, tp.partition, offset))
        self._find_starts(assigned)

    def _until_done(self, what: str, step: Callable[[], None]) -> None:
        """Run ``step`` until it gets through Kafka (a broker restarting, a coordinator moving),
        saying so once a second; a stop request ends the trying."""
        while not self.stopping:
            try:
                step()
                return
            except KafkaException as exc:
                log.warning("%s: %s; trying again", what, exc.args[0].str())
                time.sleep(1.0)

    def _publish_committed(self) -> None:
        """Hand what the last commits made durable to the live view (loop thread only)."""
        batches, self.committed = self.committed, []
        for batch in batches:
            for alert in batch.alerts:
                self.state.add_alert(alert)
            for source, totals in batch.totals.items():
                by_model: dict[str | None, dict[str, int]] = {}
                for (model_id, name), n in totals.items():
                    by_model.setdefault(model_id, {})[name] = n
                for model_id, named in by_model.items():
                    self.state.set_totals(model_id, source, named, restored=batch.restored)
            self.summaries_due |= batch.models

    def _refresh_live_state(self) -> None:
        now = datetime.now(UTC)
        due, self.summaries_due = self.summaries_due, set()
        for model_id in due:
            if (model := self.detect.models.get(model_id)) is not None:
                self.state.set_summary(model.bank.summary(), updated_at=now)
        self.metrics.set_consumer_lag(self._lag())
        assigned = Counter(topic for topic, _partition in self.assigned)
        self.metrics.set_assigned({topic: assigned[topic] for topic in self.reading})

    def _lag(self) -> dict[tuple[str, int], int]:
        lag: dict[tuple[str, int], int] = {}
        for topic, partition in self.assigned:
            tp = TopicPartition(topic, partition)
            try:
                _low, high = self.consumer.get_watermark_offsets(tp, cached=True)
                (position,) = self.consumer.position([tp])
            except KafkaException:
                continue
            if high >= 0 and position.offset >= 0:
                lag[(topic, partition)] = max(0, high - position.offset)
        return lag

    def _message_error(self, message: Message) -> None:
        error = message.error()
        assert error is not None
        if error.code() in UNREADABLE:
            self._unreadable(str(message.topic()), error.str())
        else:
            log.warning("consumer: %s", error.str())

    def _unreadable(self, topic: str, reason: str) -> None:
        """A read refused (a missing topic, an ACL denial): logged as an error (sampled) and
        counted in ``unreadable_topic`` by the loop (this may run in the consumer's thread)."""
        self.unreadable_log.record(topic, f"{reason} (missing, deleted or not allowed: ACLs)")
        self.unreadable += 1

    def _warn_idle(self, seconds: float) -> None:
        if not self.assigned:
            log.warning(
                "no partition assigned for %.0fs: group %s gives this worker nothing to read "
                "(more workers than partitions, or its topics are missing)",
                seconds,
                self.app_id,
            )
        else:
            lag = sum(self._lag().values())
            log.warning(
                "no record read for %.0fs from %d assigned partitions (lag %d): is anything "
                "producing to %s and %s?",
                seconds,
                len(self.assigned),
                lag,
                self.names.predictions,
                self.names.labels,
            )

    async def _shut_down(self, flushing: asyncio.Task[bool] | None) -> None:
        try:
            await asyncio.to_thread(self._commit, 1)  # a stopping worker does not linger
        except KafkaException as exc:
            log.warning("final commit failed (%s); the next worker redoes it", exc)
        self._publish_committed()
        if flushing is not None:
            await flushing
        self._refresh_live_state()
        await self.state.flush()
        await asyncio.to_thread(self.consumer.close)
        self.producer.flush(10)
        log.info("worker stopped")


def _event_time(
    parsed: PredictionEvent | LabelEvent | InvalidEvent,
    run: list[tuple[datetime, Any]],
    merge: EventTimeMerge[tuple[str, int], Any],
    key: tuple[str, int],
) -> datetime:
    """Where a parsed input record goes in its stage's merge: its event's time, or, for one
    that is not a valid event, the place it has in its partition (after the one before it)."""
    if isinstance(parsed, InvalidEvent):
        return run[-1][0] if run else merge.latest(key) or EARLIEST
    return parsed.timestamp


def _moved(record: InputRecord, side: str, message: Message) -> InputRecord:
    """A repartition record as the input record of ``side`` it was: where it was first written
    and its sizes if it was cut (for the dead letter it may become)."""
    headers: list[tuple[str, bytes]] = message.headers() or []  # type: ignore[assignment]
    found = {name: value.decode(errors="replace") for name, value in headers if name in MOVED}
    sizes = found.get(SIZES, "").split()
    return record._replace(
        topic=side,
        origin=found.get(ORIGIN),
        sizes=(int(sizes[0]), int(sizes[1])) if len(sizes) == 2 else None,
    )


def _describe(partitions: list[TopicPartition]) -> str:
    by_topic: dict[str, list[int]] = {}
    for tp in partitions:
        by_topic.setdefault(tp.topic, []).append(tp.partition)
    return "; ".join(f"{t} {sorted(ps)}" for t, ps in sorted(by_topic.items())) or "nothing"


def run_kafka_worker(settings: Settings, metrics: WorkerMetrics) -> None:
    """Run the Kafka-native worker in the foreground until SIGINT or SIGTERM."""
    worker = KafkaWorker(settings, metrics)

    async def main() -> None:
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, worker.stop)
        await worker.run()

    asyncio.run(main())
    worker.credentials.raise_failure()
