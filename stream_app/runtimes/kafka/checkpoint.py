"""The Kafka-native runtime's checkpoint: every offset the worker owns, and the commit of one
Kafka transaction in numbered steps (quixstreams' ``checkpointing/checkpoint.py`` is the model).

Offsets, per partition read:

- ``next_offsets``: where the route and join stages read next (the committed offset at
  assignment, then past the last record fetched); the stages' merges wait on a partition whose
  consumer position is behind its end;
- ``positions``: what the open transaction commits: past the last record routed or joined (a
  record held in a merge is not committed: a crash reads it again), and for ``observations``
  what was read but no further than the oldest record a model holds
  (:meth:`~pipeline.detect.DetectProcessor.oldest_held`);
- ``detect_read`` and ``detect_committed``: the ``observations`` offsets read and committed.

:meth:`Checkpoint.commit`, every ``worker.commit_interval_seconds``, stretched
under load, or when writing the state takes long (:func:`commit_interval`):

1. the ``observations`` offsets that moved join the commit;
2. nothing changed (no offset, no counter, no model): nothing to commit;
3. the state changes since the last commit go to the changelogs
   (:meth:`~stream_app.runtimes.kafka.stores.StateStores.write`);
4. the input offsets go into the transaction (``send_offsets_to_transaction`` with the
   consumer's group metadata: a worker that lost its partitions is fenced, KIP-447);
5. the transaction commits, atomically: outputs, state, offsets
   (:class:`~stream_app.runtimes.kafka.transactions.TransactionalProducer`: retried while
   retriable);
6. what it made durable (alerts, changed totals, changed models) is handed to the live view;
7. its offsets are the committed ones;
8. the next transaction begins.

A step that fails raises :class:`~confluent_kafka.KafkaException`; the caller rolls back
(:meth:`discard`, then the stores are restored and the consumer rewound: :meth:`rewind`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

from pipeline.detect import DetectProcessor
from pipeline.effects import PartitionTag
from schemas.events import DriftAlert
from stream_app.runtimes.kafka.changelog import Totals
from stream_app.runtimes.kafka.stores import StateStores
from stream_app.runtimes.kafka.transactions import COMMIT_ATTEMPTS, TransactionalProducer

Key = tuple[str, int]  # (topic, partition)

COMMIT_SHARE = 5
"""Under load, the interval between commits stretches to this many times the last commit's
duration (so committing takes at most a fifth of the worker's time)."""


def commit_interval(
    commit_seconds: float, state_seconds: float, least: float, most: float, *, behind: bool
) -> float:
    """The time until the next commit, after one that took ``commit_seconds`` in all and
    ``state_seconds`` to write its state changes: ``least`` while commits are quick;
    :data:`COMMIT_SHARE` times the whole commit when the worker is ``behind`` (a backlog), and
    at any load that many times the state's writing (a wide model rewrites every signal each
    commit); never over ``most`` (nor under ``least``).

    >>> commit_interval(0.02, 0.002, 0.05, 1.0, behind=False)  # a few models
    0.05
    >>> commit_interval(0.05, 0.03, 0.05, 1.0, behind=False)  # a model of 1,000 features
    0.15
    >>> commit_interval(0.05, 0.002, 0.05, 1.0, behind=True)  # a backlog
    0.25
    >>> commit_interval(3.0, 0.002, 0.05, 1.0, behind=True)
    1.0
    """
    spent = commit_seconds if behind else state_seconds
    return max(least, min(most, COMMIT_SHARE * spent))


def commit_due(waited: float, interval: float, *, alerting: bool, behind: bool) -> bool:
    """Whether to commit now, ``waited`` seconds after the last commit: the ``interval`` has
    passed, or the open transaction holds an alert and the worker is not ``behind`` (a poll
    that brought a full batch: a backlog's alerts go with the interval's commits).

    >>> commit_due(0.02, 0.1, alerting=True, behind=False)
    True
    >>> commit_due(0.02, 0.1, alerting=True, behind=True)
    False
    >>> commit_due(0.1, 0.1, alerting=False, behind=True)
    True
    """
    return waited >= interval or (alerting and not behind)


@dataclass
class Committed:
    """What one transaction made durable, for the live view: the alerts it published, the
    totals of the partitions whose counters changed, the models whose state changed."""

    alerts: list[DriftAlert] = field(default_factory=list)
    totals: dict[PartitionTag, dict[tuple[str | None, str], int]] = field(default_factory=dict)
    models: set[str] = field(default_factory=set)
    restored: bool = False


class Checkpoint:
    """The offsets of the assigned partitions and the commit of the open transaction."""

    def __init__(
        self,
        observations: str,
        consumer: Consumer,
        producer: TransactionalProducer,
        stores: StateStores,
        detect: DetectProcessor,
    ) -> None:
        self.observations = observations
        self.consumer = consumer
        self.producer = producer
        self.stores = stores
        self.detect = detect
        self.next_offsets: dict[Key, int] = {}
        self.positions: dict[Key, int] = {}
        self.detect_read: dict[int, int] = {}  # observations partition -> next offset read
        self.detect_committed: dict[int, int] = {}
        self.uncommitted = Committed()
        self.committed: list[Committed] = []
        self.state_seconds = 0.0
        """How long the last commit took to take and send its state changes (step 3)."""

    @property
    def alerting(self) -> bool:
        """Whether the open transaction holds an alert (:func:`commit_due`)."""
        return bool(self.uncommitted.alerts)

    def produced(self, alerts: list[DriftAlert], models: set[str]) -> None:
        """Alerts published and models changed in the open transaction."""
        self.uncommitted.alerts += alerts
        self.uncommitted.models |= models

    def commit(self, attempts: int = COMMIT_ATTEMPTS) -> bool:
        """Commit the open transaction in the steps of the module's docstring (a retriable
        commit error tried ``attempts`` times in all); whether there was anything to commit."""
        # 1. the observations offsets that moved
        for partition, read in self.detect_read.items():
            held = self.detect.oldest_held(partition)
            offset = read if held is None else held
            if self.detect_committed.get(partition) != offset:
                self.positions[(self.observations, partition)] = offset
        # 2. nothing to commit
        if not self.positions and not self.stores.changed and not self.detect.changed:
            self.state_seconds = 0.0
            return False
        # 3. the state changes
        started = time.perf_counter()
        self.stores.write(self.detect.take_state_changes())
        self.state_seconds = time.perf_counter() - started
        # 4. the input offsets
        if offsets := [TopicPartition(t, p, o) for (t, p), o in self.positions.items()]:
            self.producer.send_offsets(offsets, self.consumer.consumer_group_metadata())
        # 5. the commit
        self.producer.commit(attempts)
        # 6. what it made durable, for the live view
        committed, self.uncommitted = self.uncommitted, Committed()
        committed.totals.update(self.stores.committed())
        self.committed.append(committed)
        # 7. its offsets, committed
        self.detect_committed |= {
            p: o for (t, p), o in self.positions.items() if t == self.observations
        }
        self.positions.clear()
        # 8. the next transaction
        self.producer.begin()
        return True

    def discard(self) -> None:
        """Drop what the open transaction held (it was aborted)."""
        self.uncommitted = Committed()
        self.positions.clear()
        self.stores.discard_changes()

    def restored(self, totals: dict[PartitionTag, Totals]) -> None:
        """The totals of restored partitions, for the live view (not new events)."""
        for source, part in totals.items():
            self.committed.append(Committed(totals={source: dict(part)}, restored=True))

    def take_committed(self) -> list[Committed]:
        batches, self.committed = self.committed, []
        return batches

    def find_starts(self, partitions: list[TopicPartition]) -> None:
        """Where reading of the merged partitions (route and join stages) starts: the committed
        offsets, else the first."""
        inputs = [tp for tp in partitions if tp.topic != self.observations]
        for tp in self.consumer.committed(inputs, timeout=60) if inputs else []:
            start = tp.offset
            if start < 0:
                start, _high = self.consumer.get_watermark_offsets(tp, timeout=30)
            self.next_offsets[(tp.topic, tp.partition)] = start

    def rewind(self, assigned: list[TopicPartition]) -> None:
        """Seek the consumer back to the committed offsets (after a rollback)."""
        for tp in self.consumer.committed(assigned, timeout=30):
            offset = tp.offset if tp.offset >= 0 else OFFSET_BEGINNING
            self.consumer.seek(TopicPartition(tp.topic, tp.partition, offset))
        self.find_starts(assigned)

    def forget(self, revoked: list[TopicPartition]) -> None:
        for tp in revoked:
            self.next_offsets.pop((tp.topic, tp.partition), None)
            if tp.topic == self.observations:
                self.detect_read.pop(tp.partition, None)
                self.detect_committed.pop(tp.partition, None)
