"""The Kafka-native runtime's three stages, each a hop through Kafka; what they emit is produced
into the open transaction.

- **route**: each input record goes to the join partition Kafka's default partitioner gives
  its key (:func:`pipeline.partitioner.partitions_for`), so both sides of a request meet on one
  partition whatever partitioner, and however many partitions, the producers used. When this
  worker holds that join partition (always, with one worker), the record is joined at once,
  decoded once, in the same transaction as its input offset; otherwise it is written, as it
  came, to its side's repartition topic, with its origin in a ``driftstream-origin`` header,
  for the member that holds it. With ``join.repartition`` false the join reads the inputs
  themselves instead (co-partitioned by the producers' promise; records off their partition
  are counted).
- **join**: the repartition records go through the :class:`~pipeline.join.JoinProcessor`,
  one join buffer per repartition partition;
- **detect**: observations go through the :class:`~pipeline.detect.DetectProcessor`.

The route and join stages take their records merged by event time across partitions
(:class:`~pipeline.partition_merge.EventTimeMerge`; both by the events' own time). A partition with
nothing held holds the others back while the consumer's position is behind its end; one that
holds more than its share of ``worker.max_held_records`` (it ran ahead of the others in event
time) is not fetched until it holds half of that (:func:`~pipeline.partition_merge.run_ahead`);
the shares, and the fetches, are small enough that all the partitions together stay within
the bound (:func:`~pipeline.partition_merge.shares`).
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from confluent_kafka import Consumer, Message, TopicPartition

from pipeline.dead_letters import cut
from pipeline.effects import Effects, InputRecord
from pipeline.partition_merge import EventTimeMerge, run_ahead, shares
from pipeline.partitioner import partitions_for
from schemas.errors import InvalidEvent
from schemas.events import LabelEvent, PredictionEvent
from stream_app.metrics import WorkerMetrics
from stream_app.processors import detect_processor, join_processor
from stream_app.runtimes.kafka.checkpoint import Checkpoint, Key
from stream_app.runtimes.kafka.clients import ClientErrors, Layout
from stream_app.runtimes.kafka.stores import StateStores
from stream_app.runtimes.kafka.transactions import TransactionalProducer
from stream_app.sampled_log import SampledLog
from stream_app.settings import Settings

log = logging.getLogger(__name__)

EARLIEST = datetime.min.replace(tzinfo=UTC)

Parsed = tuple[InputRecord, PredictionEvent | LabelEvent | InvalidEvent]
JoinInput = tuple[Key, Parsed]  # the Kafka partition a join record was read from
Routed = tuple[Message, Parsed, int]  # and the join partition of its key
ORIGIN = "driftstream-origin"  # where a repartition record was first written
SIZES = "driftstream-sizes"  # key and value sizes of an input cut to be moved
MOVE_HEADERS = (ORIGIN, SIZES)
TAKEN = ("join", "moved", "detect")
"""The stages of the metrics (``driftstream_consumed_messages_total``): input records taken,
records another worker routed here through a repartition topic, observations."""


class Stages:
    """The route, join and detect stages of one worker, over its assigned partitions."""

    def __init__(
        self,
        settings: Settings,
        layout: Layout,
        metrics: WorkerMetrics,
        consumer: Consumer,
        producer: TransactionalProducer,
        stores: StateStores,
        errors: ClientErrors,
    ) -> None:
        self.layout = layout
        self.metrics = metrics
        self.consumer = consumer
        self.producer = producer
        self.stores = stores
        self.errors = errors
        self.join = join_processor(
            settings, layout.names.predictions, store_for=stores.join_store_of
        )
        self.detect = detect_processor(settings, load=stores.load)
        self.checkpoint: Checkpoint | None = None  # set by the worker, which makes it after
        self.effects = Effects()
        self.worker_settings = settings.worker
        most = settings.worker.max_held_records
        self.route_merge: EventTimeMerge[Key, Routed] = EventTimeMerge(most)
        self.merge: EventTimeMerge[Key, JoinInput] = EventTimeMerge(most)
        self.held_per_partition = most
        """A partition holding more of a merge is paused (set by :meth:`laid_out`)."""
        self.fetch_size = settings.worker.batch_size
        """The most records a fetch takes (:meth:`laid_out` may lower the batch size)."""
        self.repartition_partitions = 0
        self.local_joins: set[int] = set()
        """The join partitions this worker holds (restored): records routed there are joined
        in this process, not moved through the repartition topics."""
        self.paused: set[Key] = set()
        """Partitions not fetched while they hold too much of a merge (:meth:`release`)."""
        self.dead_letter_log = SampledLog(log, "dead-lettered")
        self.misplaced_log = SampledLog(log, "input records on the wrong partition", 60.0, 30)

    @property
    def offsets(self) -> Checkpoint:
        assert self.checkpoint is not None
        return self.checkpoint

    def laid_out(self, partitions: dict[str, int]) -> None:
        """The topics' partition counts, once known (at start)."""
        inputs = {topic: partitions[topic] for topic in self.layout.names.inputs}
        log.info("input partitions: %s", ", ".join(f"{t} {n}" for t, n in inputs.items()))
        if not self.layout.repartition:
            self.join.input_partitions = inputs
        self.repartition_partitions = partitions[self.layout.join_topic]
        moved = 2 * self.repartition_partitions if self.layout.repartition else 0
        merged = max(sum(inputs.values()), moved)  # the partitions of the larger merge
        worker = self.worker_settings
        self.held_per_partition, self.fetch_size = shares(
            worker.max_held_records, merged, worker.batch_size
        )
        log.info(
            "%d partitions merged in event time: each paused past %d records held, fetches "
            "of at most %d (worker.max_held_records %d, worker.batch_size %d)",
            merged,
            self.held_per_partition,
            self.fetch_size,
            worker.max_held_records,
            worker.batch_size,
        )

    # -- records in -----------------------------------------------------------------------

    def process(self, messages: list[Message]) -> None:
        """One batch from the consumer: the detect stage's records at once, the route and join
        stages' into their merges; then what the merges release."""
        effects, now, offsets = self.effects, datetime.now(UTC), self.offsets
        layout = self.layout
        runs: dict[Key, list[tuple[datetime, JoinInput]]] = {}
        route_runs: dict[Key, list[tuple[datetime, tuple[Message, Parsed]]]] = {}
        taken = dict.fromkeys(TAKEN, 0)  # by the metrics' stage
        oldest: dict[str, float] = {}
        for message in messages:
            if message.error() is not None:
                self.errors.message_error(message)
                continue
            topic, partition, offset = message.topic(), message.partition(), message.offset()
            assert topic is not None
            assert partition is not None
            assert offset is not None
            kind, ms = message.timestamp()
            timestamp = ms / 1000 if kind else None
            if topic == layout.names.observations:
                stage = label = "detect"
            elif topic in layout.repartitions:
                stage, label = "route", "join"
            else:
                stage, label = "join", "moved" if topic in layout.input_of else "join"
            taken[label] += 1
            if timestamp is not None and timestamp < oldest.get(label, 1e18):
                oldest[label] = timestamp
            key = (topic, partition)
            record = InputRecord(
                topic, partition, offset, message.key(), message.value(), timestamp
            )
            if stage == "route":  # by the events' own time: a burst shares Kafka timestamps
                route_run = route_runs.setdefault(key, [])
                parsed = self.join.parse(record, now)
                at = _event_time(parsed, route_run, self.route_merge, key)
                route_run.append((at, (message, (record, parsed))))
            elif stage == "join":
                if (side := layout.input_of.get(topic)) is not None:  # a repartition topic
                    record = _moved(record, side, message)
                parsed = self.join.parse(record, now)
                run = runs.setdefault(key, [])
                run.append((_event_time(parsed, run, self.merge, key), (key, (record, parsed))))
            else:
                self.detect.take_record(record, effects)
                offsets.detect_read[partition] = offset + 1
        self.detect.publish_applied(effects)  # each model's observations as one batch
        for stage, n in taken.items():
            if n:
                self.metrics.consumed_batch(stage, n, oldest.get(stage))
        for key, route_run in route_runs.items():
            self.route_merge.add(key, self._placed(route_run))
            offsets.next_offsets[key] = route_run[-1][1][1][0].offset + 1
        for key, run in runs.items():
            self.merge.add(key, run)
            offsets.next_offsets[key] = run[-1][1][1][0].offset + 1
        self.release()

    @property
    def held(self) -> bool:
        return bool(self.merge.held or self.route_merge.held)

    def release(self) -> None:
        """Route, then join, the records every partition of the stage has caught up with, in
        event-time order; then produce what came of the whole batch."""
        positions = self.offsets.positions
        for message, input_record, target in self.route_merge.release(
            waiting=self._waiting(self.route_merge)
        ):
            self._route(message, input_record, target)
        for key, (record, parsed) in self.merge.release(waiting=self._waiting(self.merge)):
            self.join.apply(record, parsed, self.effects)
            positions[key] = record.offset + 1
        self.produce()
        held = {**self.route_merge.held_by_partition(), **self.merge.held_by_partition()}
        self._fetch(*run_ahead(held, self.paused, self.held_per_partition))

    def _fetch(self, pause: set[Key], resume: set[Key]) -> None:
        """Stop fetching ``pause`` and fetch ``resume`` again (a paused partition's prefetched
        records are dropped; it is fetched again from the record after the last consumed)."""
        if pause:
            self.consumer.pause([TopicPartition(*key) for key in sorted(pause)])
        if resume:
            self.consumer.resume([TopicPartition(*key) for key in sorted(resume)])
        self.paused = (self.paused | pause) - resume

    def release_quiet(self) -> None:
        """What the detection stage holds of kinds that went quiet; produced if anything."""
        self.detect.release_quiet(self.effects)
        if self.effects.changed_models:
            self.produce()

    def watch_clocks(self, *, idle: bool, together: bool) -> None:
        """The silences the clocks the runtime vouches for reveal
        (:mod:`~stream_app.runtimes.kafka.clock_watch`); produced if any."""
        self.detect.watch_clocks(self.effects, idle=idle, together=together)
        if self.effects.changed_models:
            self.produce()

    def _waiting(self, merge: EventTimeMerge[Key, Any]) -> list[Key]:
        """The partitions of ``merge``'s stage with nothing held whose records are on their way
        (the consumer's position, which steps over transaction markers, is behind the end the
        last fetch saw)."""
        route = merge is self.route_merge
        next_offsets = self.offsets.next_offsets
        idle = [
            TopicPartition(*key)
            for key in next_offsets
            if (key[0] in self.layout.repartitions) == route and merge.latest(key) is None
        ]
        waiting = []
        for tp in self.consumer.position(idle) if idle else []:
            key = (tp.topic, tp.partition)
            position = tp.offset if tp.offset >= 0 else next_offsets[key]
            _low, high = self.consumer.get_watermark_offsets(tp, cached=True)
            if high > position:
                waiting.append(key)
        return waiting

    # -- records out ----------------------------------------------------------------------

    def _placed(
        self, run: list[tuple[datetime, tuple[Message, Parsed]]]
    ) -> list[tuple[datetime, Routed]]:
        """A partition's run of input records with the join partition of each one's key (all
        hashed at once: :func:`~pipeline.partitioner.partitions_for`)."""
        keys = [parsed[0].key or b"" for _, (_, parsed) in run]
        targets = partitions_for(keys, self.repartition_partitions)
        return [(at, (m, parsed, t)) for (at, (m, parsed)), t in zip(run, targets, strict=True)]

    def _route(self, message: Message, input_record: Parsed, target: int) -> None:
        """Join one input record on ``target``, the join partition of its key, if this worker
        holds it, else write it, as it came, to that partition of its repartition topic."""
        record, event = input_record
        topic, partition, offset = record.topic, record.partition, record.offset
        self.offsets.positions[(topic, partition)] = offset + 1
        origin = f"{topic}/{partition}/{offset}"
        if target in self.local_joins:
            self.join.apply(record._replace(partition=target, origin=origin), event, self.effects)
            return
        key, value = record.key, record.value
        headers = [*(message.headers() or []), (ORIGIN, origin.encode())]
        if (smaller := cut(key, value)) is not None:  # too big to send on whole
            headers.append((SIZES, f"{len(key or b'')} {len(value or b'')}".encode()))
            key, value = smaller
        kind, ms = message.timestamp()
        self.producer.send(
            self.layout.repartitions[topic],
            key,
            value,
            partition=target,
            headers=headers,
            **({"timestamp": ms} if kind else {}),
        )

    def produce(self) -> None:
        """Produce the outputs in the open transaction and fold the counts into the state."""
        effects, topics = self.effects, self.layout.outputs
        for letter in effects.dead_letters:
            self.dead_letter_log.record(letter.source, letter.reason)
        for output in effects.outputs:
            self.producer.send(
                topics[output.stream], output.key, output.value, headers=output.headers
            )
        for (_model_id, name, source), n in effects.counts.items():
            if name == "wrong_partition":
                self.misplaced_log.record(
                    f"({n} on join partition {source.partition})",
                    "their keys belong elsewhere by Kafka's default partitioner (murmur2), so "
                    "they may never meet their other half: have every producer key by "
                    "request_id with that partitioner (librdkafka and kcat: "
                    "partitioner=murmur2_random), or set join.repartition true",
                )
        self.stores.count(effects.counts)
        self.offsets.produced(effects.alerts, effects.changed_models)
        effects.clear()

    # -- assignment -----------------------------------------------------------------------

    def forget(self, revoked: list[TopicPartition]) -> tuple[set[int], set[int]]:
        """Drop what the stages hold of revoked partitions; their join and observations
        partitions."""
        keys = {(tp.topic, tp.partition) for tp in revoked}
        self.merge.forget(keys)
        self.route_merge.forget(keys)
        self._fetch(set(), self.paused & keys)  # before a rollback seeks them
        joins = {tp.partition for tp in revoked if tp.topic == self.layout.join_topic}
        observations = {
            tp.partition for tp in revoked if tp.topic == self.layout.names.observations
        }
        self.join.revoke(joins)
        self.local_joins -= joins
        self.detect.revoke(observations)
        return joins, observations


def _event_time(
    parsed: PredictionEvent | LabelEvent | InvalidEvent,
    run: list[tuple[datetime, Any]],
    merge: EventTimeMerge[Key, Any],
    key: Key,
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
    found = {
        name: value.decode(errors="replace") for name, value in headers if name in MOVE_HEADERS
    }
    sizes = found.get(SIZES, "").split()
    return record._replace(
        topic=side,
        origin=found.get(ORIGIN),
        sizes=(int(sizes[0]), int(sizes[1])) if len(sizes) == 2 else None,
    )
