"""The join processor: input records in, observations, dead letters and counts out.

For each record of ``predictions`` or ``labels`` it runs the edge checks
(:mod:`pipeline.edge`), the partition's :class:`~detectors.join_buffer.JoinBuffer` and the
forwarding rules, and appends to :class:`~pipeline.effects.Effects`:

- a valid prediction seen for the first time is forwarded to ``observations`` (the data
  signals see each request once; a duplicate is counted, not forwarded);
- a match is forwarded once as a :class:`~detectors.join_buffer.JoinedOutcome`, under the
  prediction's model;
- entries that expire (event time) are counted per model: ``expired_predictions``,
  ``orphan_labels``; entries the per-partition cap evicts are counted in ``evicted``;
- anything invalid goes to ``deadletter`` with its reason;
- with ``input_partitions`` (a runtime that reads the inputs without a repartition hop), a
  record that is not on the partition Kafka's default partitioner gives its key is counted in
  ``wrong_partition`` (and still joined: its other half is likely on another partition).

Each input partition has its own buffer (expiry index and watermark) over a store the runtime
provides (``store_for``): a ``dict`` in the replay, a
:class:`~pipeline.state.ChangeTrackingStore` restored from a changelog in the Kafka-native
runtime, a view of a Faust table in the Faust runtime. Counts are tagged with the partition
(``i3``), whose state owns them.

With ``redelivery=True`` (a runtime that delivers records again after a crash: Faust) the join
remembers where each side came from, so a record read again repeats what it did
(:func:`~detectors.join_buffer.join_step`); a transactional runtime restores state and offsets
together and needs none of it.

>>> from datetime import UTC, datetime
>>> from schemas.codec import encode
>>> from schemas.events import LabelEvent, PredictionEvent
>>> t = datetime(2026, 1, 1, tzinfo=UTC)
>>> prediction = PredictionEvent(request_id="r1", model_id="m", model_version="1",
...     timestamp=t, features={"x": 1.0}, prediction=1)
>>> label = LabelEvent(request_id="r1", model_id="m", timestamp=t, label=0)
>>> join = JoinProcessor("predictions", ttl_seconds=60, max_pending=100, max_future_seconds=300)
>>> effects = Effects()
>>> for topic, event in [("predictions", prediction), ("labels", label), ("labels", label)]:
...     join.process(InputRecord(topic, 0, 0, b"r1", encode(event)), effects, now=t)
>>> [o.stream for o in effects.outputs]
['observations', 'observations']
>>> {name: n for (_model, name, _source), n in sorted(effects.counts.items())}
{'duplicate_labels': 1, 'joined': 1, 'labels': 2, 'predictions': 1}
>>> effects.observations[1].error
1.0
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, MutableMapping
from datetime import datetime

from detectors.join_buffer import JoinBuffer, JoinEntry, expired_side
from pipeline.edge import dead_letter, parse_input
from pipeline.effects import CounterName, Effects, InputRecord, PartitionTag
from pipeline.observations import encode_observation, forwarded_prediction
from pipeline.partitioner import partition_for
from schemas.errors import InvalidEvent
from schemas.events import LabelEvent, PredictionEvent

StoreFactory = Callable[[int], MutableMapping[str, JoinEntry]]

SIDE_COUNTERS: dict[bool, tuple[CounterName, CounterName]] = {
    True: ("predictions", "duplicate_predictions"),
    False: ("labels", "duplicate_labels"),
}
"""Whether an event is a prediction -> the counters of its side: received, duplicates."""


class JoinProcessor:
    """Join buffers by input partition, fed records (:meth:`process`) or events (:meth:`offer`).

    Parameters
    ----------
    predictions_topic
        Records of this topic are predictions; any other input topic holds labels.
    ttl_seconds, max_pending, max_future_seconds
        The join's limits (``stream_app.settings.JoinSettings``): event-time TTL, entries per
        partition, and how far ahead of the clock an event may be stamped.
    store_for
        The store of a partition's entries, asked once per partition (default: a ``dict``).
    redelivery
        The runtime delivers records again after a crash: remember each side's record
        position, so a record read again repeats what it did.
    input_partitions
        The partition counts of the input topics, when the runtime reads them as they are
        (producers promise co-partitioning): records keyed off their partition are counted.
    forward
        Emit the observations to the ``observations`` stream as bytes (False: only as objects
        in ``Effects.observations``, for a caller that applies them in the same process).
    """

    def __init__(
        self,
        predictions_topic: str,
        *,
        ttl_seconds: float,
        max_pending: int,
        max_future_seconds: float,
        store_for: StoreFactory | None = None,
        redelivery: bool = False,
        input_partitions: Mapping[str, int] | None = None,
        forward: bool = True,
    ) -> None:
        self.predictions_topic = predictions_topic
        self.forward = forward
        self.ttl_seconds = ttl_seconds
        self.max_pending = max_pending
        self.max_future_seconds = max_future_seconds
        self.store_for: StoreFactory = store_for or (lambda _partition: {})
        self.redelivery = redelivery
        self.input_partitions = input_partitions or {}
        self.buffers: dict[int, JoinBuffer] = {}
        self._evicted: dict[int, int] = {}

    def buffer(self, partition: int) -> JoinBuffer:
        """The partition's buffer, built (and its index rebuilt from the store) on first use."""
        buffer = self.buffers.get(partition)
        if buffer is None:
            buffer = JoinBuffer(
                self.store_for(partition),
                ttl_seconds=self.ttl_seconds,
                max_pending=self.max_pending,
            )
            buffer.rebuild_index()
            self.buffers[partition] = buffer
            self._evicted[partition] = 0
        return buffer

    def revoke(self, partitions: Iterable[int]) -> None:
        """Drop the buffers of partitions this worker no longer holds."""
        for partition in partitions:
            self.buffers.pop(partition, None)
            self._evicted.pop(partition, None)

    def process(self, record: InputRecord, effects: Effects, now: datetime) -> None:
        """Decode and check one input record, then join it (or dead-letter it)."""
        self.apply(record, self.parse(record, now), effects)

    def parse(
        self, record: InputRecord, now: datetime
    ) -> PredictionEvent | LabelEvent | InvalidEvent:
        """The event in one input record, or why it is not one (:mod:`pipeline.edge`)."""
        try:
            return parse_input(
                record,
                is_prediction=record.topic == self.predictions_topic,
                now=now,
                max_future_seconds=self.max_future_seconds,
            )
        except InvalidEvent as exc:
            return exc

    def apply(
        self,
        record: InputRecord,
        parsed: PredictionEvent | LabelEvent | InvalidEvent,
        effects: Effects,
    ) -> None:
        """Join the event :meth:`parse` found in ``record``, or dead-letter the record."""
        if isinstance(parsed, InvalidEvent):
            dead_letter(record, parsed.reason, effects, PartitionTag.of_input(record.partition))
            return
        n = self.input_partitions.get(record.topic)
        if n and record.key is not None and partition_for(record.key, n) != record.partition:
            tag = PartitionTag.of_input(record.partition)
            effects.count(None, "wrong_partition", source=tag)
        position = None
        if self.redelivery:
            side = "p" if isinstance(parsed, PredictionEvent) else "l"
            position = f"{side}{record.partition}:{record.offset}"
        self.offer(parsed, record.partition, effects, position, received=record.value)

    def offer(
        self,
        event: PredictionEvent | LabelEvent,
        partition: int,
        effects: Effects,
        position: str | None = None,
        received: bytes | None = None,
    ) -> None:
        """Join one valid event of ``partition`` (``received``: its bytes as they came)."""
        source = PartitionTag.of_input(partition)
        kind, duplicate = SIDE_COUNTERS[isinstance(event, PredictionEvent)]
        effects.count(event.model_id, kind, source=source)
        buffer = self.buffer(partition)
        step = buffer.offer(event, position)
        if step.note == "duplicate":
            effects.count(event.model_id, duplicate, source=source)
        elif isinstance(event, PredictionEvent):  # once per request, for the data signals
            if self.forward:
                value = (
                    encode_observation(event)
                    if received is None
                    else forwarded_prediction(received)
                )
                effects.emit("observations", event.model_id.encode(), value)
            effects.observations.append(event)
        if (outcome := step.outcome) is not None:  # routed by the prediction's model
            effects.count(outcome.model_id, "joined", source=source)
            if self.forward:
                value = encode_observation(outcome)
                effects.emit("observations", outcome.model_id.encode(), value)
            effects.observations.append(outcome)
        for _request_id, entry in buffer.expire():
            model_id, counter = expired_side(entry)
            effects.count(model_id, counter, source=source)
        if (evicted := buffer.evicted) != self._evicted[partition]:
            effects.count(None, "evicted", evicted - self._evicted[partition], source=source)
            self._evicted[partition] = evicted
