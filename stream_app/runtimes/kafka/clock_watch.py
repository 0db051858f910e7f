"""What the worker can vouch for beyond its event-time clocks: a stream read to its end, or idle.

A model that stops while others send is seen by the event-time clock of its ``observations``
partition (:mod:`pipeline.detect`); when every model of a partition stops, that clock stops.
:class:`ClockWatch` tells the detection processor
(:meth:`~pipeline.detect.DetectProcessor.watch_clocks`) two things it may then rely on:

- **Read together**: this worker holds every partition it reads (the only member of its group)
  and each is read to within :data:`LAG_TOLERANCE` records of its end as the last fetch saw it
  (no backlog): the partitions' clocks are one, the latest of them, so a model alone on its
  partition that stopped while the others send is silent too.
- **Idle**: nothing read for :data:`IDLE_SECONDS`, and the broker says every partition of the
  input topics is committed by the group up to its end, and this worker's own partitions read
  to theirs (the ends read from the broker now, not from the last fetch). Each partition's
  clock then goes on with the wall clock (``worker.wall_clock_silence``), so models that all
  stopped are silent. A broker that does not answer is no idle stream: a stalled consumer or
  broker silences nobody. Not checked: the repartition and observations partitions of other
  members (a record on its way back here is read within a check or two).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence

from confluent_kafka import Consumer, KafkaException, TopicPartition

log = logging.getLogger(__name__)

CHECK_SECONDS = 1.0
"""How often the clocks are vouched for (while a model's silence check is pending)."""
LAG_TOLERANCE = 100
"""Records a partition may have unread, by the last fetch, and still count as read to its end."""
IDLE_SECONDS = 1.0
"""Nothing read for this long before the broker is asked whether the stream is idle."""
IDLE_CHECK_SECONDS = 5.0
"""The broker is asked at most this often."""
TIMEOUT_SECONDS = 5.0
"""How long each question to the broker may take."""
OFFSET_LATEST = -1
"""The ListOffsets timestamp that asks for a partition's end (its latest stable offset)."""


class ClockWatch:
    """Whether the worker's partitions are read together, or the stream is idle, for the
    consumer that reads ``partitions`` (topic -> partition count; ``inputs``: the input
    topics)."""

    def __init__(
        self, consumer: Consumer, inputs: Sequence[str], partitions: dict[str, int]
    ) -> None:
        self.consumer = consumer
        self.inputs = inputs
        self.partitions = partitions
        self.last_check = self.last_idle_check = float("-inf")

    def due(self, now: float) -> bool:
        """Whether to look now (monotonic seconds): at most every :data:`CHECK_SECONDS`."""
        if now - self.last_check < CHECK_SECONDS:
            return False
        self.last_check = now
        return True

    def together(self, assigned: set[tuple[str, int]], read: Mapping[tuple[str, int], int]) -> bool:
        """Whether this worker holds every partition, each read to within
        :data:`LAG_TOLERANCE` of its end as the last fetch saw it (``read``: where the worker
        is known to be, for a partition the consumer has delivered nothing of yet)."""
        if len(assigned) < sum(self.partitions.values()):
            return False
        tps = [TopicPartition(topic, partition) for topic, partition in assigned]
        try:
            for tp in self.consumer.position(tps):
                key = (tp.topic, tp.partition)
                low, high = self.consumer.get_watermark_offsets(tp, cached=True)
                offset = tp.offset if tp.offset >= 0 else read.get(key, low)
                if high < 0 or high - offset > LAG_TOLERANCE:
                    return False
        except KafkaException:
            return False
        return True

    def idle_due(self, now: float, last_record: float) -> bool:
        """Whether to ask the broker now: nothing read for :data:`IDLE_SECONDS`, and no
        question within :data:`IDLE_CHECK_SECONDS`."""
        if now - last_record < IDLE_SECONDS or now - self.last_idle_check < IDLE_CHECK_SECONDS:
            return False
        self.last_idle_check = now
        return True

    def idle(self, assigned: set[tuple[str, int]], read: Mapping[tuple[str, int], int]) -> bool:
        """Whether the stream is idle, as the broker says now (blocking: a few requests, each
        behind the consumer's fetch on its connection; run it beside the loop). ``read`` as in
        :meth:`together`."""
        consumer, timeout = self.consumer, TIMEOUT_SECONDS
        keys = {(topic, p) for topic in self.inputs for p in range(self.partitions[topic])}
        keys |= assigned
        try:  # one ListOffsets for all: the latest stable offsets (the consumer reads committed)
            ends = consumer.offsets_for_times(
                [TopicPartition(topic, p, OFFSET_LATEST) for topic, p in sorted(keys)], timeout
            )
            mine = [TopicPartition(topic, p) for topic, p in sorted(assigned)]
            others = [TopicPartition(*key) for key in sorted(keys - assigned)]
            offsets = {**read}
            for tp in [*consumer.position(mine), *consumer.committed(others, timeout=timeout)]:
                if tp.offset >= 0:
                    offsets[(tp.topic, tp.partition)] = tp.offset
        except KafkaException as exc:  # no answer: no idle stream (the worker's errors say why)
            log.debug("idle check: %s", exc)
            return False
        return all(
            tp.error is None and tp.offset <= offsets.get((tp.topic, tp.partition), 0)
            for tp in ends
        )
