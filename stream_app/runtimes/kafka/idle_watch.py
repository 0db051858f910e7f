"""Whether the stream is idle, not stalled: the wall clock for models that all stop at once.

A model that stops while others send is seen by event time (:mod:`pipeline.detect`); when every
model stops, no event time goes on. A worker that reads nothing cannot tell producers that
stopped from a consumer cut off from its data, so :class:`IdleWatch` asks the broker: the stream
is **idle** when every partition of the input topics and of this worker's own partitions is read
to its end (the ends read from the broker, not from the last fetch): this worker's partitions
by its position (which steps over transaction markers), the other members' input partitions by
the group's committed offset. A broker that does not answer is no idle stream. Only then does
the detection processor's event-time clock go on with the wall clock
(:meth:`~pipeline.detect.DetectProcessor.watch_idle`), so a model with no prediction for its
silence gap of wall time is silent. Not checked: the repartition and observations partitions of
other members (a record moved to another member, whose observation is on its way back here, is
seen within a check or two).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from confluent_kafka import Consumer, KafkaException, TopicPartition

log = logging.getLogger(__name__)

IDLE_SECONDS = 1.0
"""Nothing read for this long before the broker is asked whether the stream is idle."""
CHECK_SECONDS = 5.0
"""The broker is asked at most this often."""
TIMEOUT_SECONDS = 5.0
"""How long each question to the broker may take."""


class IdleWatch:
    """Asks the broker whether ``inputs`` (every partition) and the worker's assigned partitions
    are read to their ends."""

    def __init__(self, consumer: Consumer, inputs: Sequence[str]) -> None:
        self.consumer = consumer
        self.inputs = inputs
        self.last_check = float("-inf")

    def due(self, now: float, last_record: float) -> bool:
        """Whether to ask now (monotonic seconds): nothing read for :data:`IDLE_SECONDS`, and
        no question within :data:`CHECK_SECONDS`."""
        return now - last_record >= IDLE_SECONDS and now - self.last_check >= CHECK_SECONDS

    def idle(self, now: float, assigned: set[tuple[str, int]]) -> bool:
        """Whether every partition is read to its end, as the broker says now."""
        self.last_check = now
        try:
            return all(high <= offset for offset, high in self._offsets_and_ends(assigned))
        except (KafkaException, KeyError) as exc:  # no answer, or a topic gone: not idle
            log.debug("idle check: %s", exc)
            return False

    def _offsets_and_ends(self, assigned: set[tuple[str, int]]) -> list[tuple[int, int]]:
        consumer, timeout = self.consumer, TIMEOUT_SECONDS
        topics = consumer.list_topics(timeout=timeout).topics
        others = [
            TopicPartition(topic, partition)
            for topic in self.inputs
            for partition in topics[topic].partitions
            if (topic, partition) not in assigned
        ]
        mine = [TopicPartition(topic, partition) for topic, partition in sorted(assigned)]
        read = consumer.position(mine) if mine else []
        committed = consumer.committed(others, timeout=timeout) if others else []
        offsets = []
        for tp in [*read, *committed]:
            low, high = consumer.get_watermark_offsets(tp, timeout=timeout, cached=False)
            offsets.append((max(tp.offset, low), high))
        return offsets
