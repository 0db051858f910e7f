"""The Kafka-native runtime's state stores: what the processors keep, per partition, and its
changelogs (:mod:`stream_app.runtimes.kafka.changelog`).

- the join entries of each join partition (a :class:`~pipeline.state.ChangeTrackingStore`, the
  join buffer's store), to ``<app id>-join-store``;
- the detection state of each model, in pieces (``<model id>/<piece>``:
  :class:`~pipeline.detect.StateChange`), to ``<app id>-detect-store`` on the store partition of
  the model's ``observations`` partition; restored pieces wait here, grouped by model id, until
  the detection processor loads the model;
- the counter totals of each partition (:class:`~pipeline.effects.PartitionTag`: a join
  partition, or an observations partition), under ``COUNTS_KEY`` in the store of that
  partition.

:meth:`StateStores.write` puts the changes since the last commit into the open transaction;
:meth:`StateStores.restore` fills newly assigned partitions from their changelogs.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from pipeline.detect import StateChange, split_state_key
from pipeline.effects import CountKey, PartitionTag
from pipeline.state import ChangeTrackingStore
from stream_app.runtimes.kafka.changelog import (
    COUNTS_KEY,
    JOIN_ENTRY,
    ChangelogWriter,
    Totals,
    encode_totals,
    join_entries,
    restore,
)
from stream_app.settings import KafkaSettings

log = logging.getLogger(__name__)

Counts = Mapping[CountKey, int]
"""Counter deltas: (model id or None, counter name, the partition that owns it) -> n."""


@dataclass
class Restored:
    """What a restore filled: the join partitions (their buffers are rebuilt from the stores),
    and the counter totals of each partition."""

    join_partitions: set[int] = field(default_factory=set)
    totals: dict[PartitionTag, Totals] = field(default_factory=dict)


class StateStores:
    """The state of the partitions assigned to the worker, and its changelogs.
    ``send(topic, key, value, partition=, headers=)`` produces into the open transaction."""

    def __init__(
        self, kafka: KafkaSettings, join_store: str, detect_store: str, send: Callable[..., None]
    ) -> None:
        self.kafka = kafka
        self.join_store, self.detect_store = join_store, detect_store
        self.join_log = ChangelogWriter(join_store, send)
        self.detect_log = ChangelogWriter(detect_store, send)
        self.joins: dict[int, ChangeTrackingStore[Any]] = {}
        self.pieces: dict[str, dict[str, bytes]] = {}
        """The restored state of the models not loaded yet: model id -> piece name -> value."""
        self.piece_partition: dict[str, int] = {}  # model id -> its observations partition
        self.legacy: dict[str, tuple[int, bytes]] = {}
        """Models whose state an older driftstream wrote whole under the model id: its
        partition and key, tombstoned with the model's first pieces."""
        self.totals: dict[PartitionTag, Totals] = {}
        self.changed_totals: set[PartitionTag] = set()

    # -- what the processors use ---------------------------------------------------------

    def join_store_of(self, partition: int) -> ChangeTrackingStore[Any]:
        """The join entries of a join partition (the join processor's ``store_for``)."""
        store = self.joins.get(partition)
        if store is None:
            store = self.joins[partition] = ChangeTrackingStore()
        return store

    def load(self, model_id: str) -> dict[str, bytes]:
        """A model's restored pieces (the detection processor's ``load``), handed over once: a
        rollback or a new assignment restores them again."""
        self.piece_partition.pop(model_id, None)
        return self.pieces.pop(model_id, {})

    def count(self, counts: Counts) -> None:
        """Fold counter deltas into the totals of their partitions."""
        for (model_id, name, source), n in counts.items():
            self.totals.setdefault(source, Counter())[(model_id, name)] += n
            self.changed_totals.add(source)

    # -- commits -------------------------------------------------------------------------

    @property
    def changed(self) -> bool:
        """Whether a counter changed since the last commit (state changes are the
        processors' to tell)."""
        return bool(self.changed_totals)

    def write(self, state_changes: Iterable[StateChange]) -> None:
        """Write every change since the last commit into the open transaction: join entries
        (a tombstone for one gone), the detection state pieces of ``state_changes``
        (:meth:`~pipeline.detect.DetectProcessor.take_state_changes`), the totals that
        changed."""
        for partition, store in self.joins.items():
            for key, entry in store.take_changes().items():
                value = None if entry is None else JOIN_ENTRY.dump_json(entry)
                self.join_log.write(partition, key.encode(), value)
        for partition, key, piece in state_changes:
            model_id, _name = split_state_key(key)
            if (legacy := self.legacy.pop(model_id, None)) is not None:
                self.detect_log.write(legacy[0], legacy[1], None)
            self.detect_log.write(partition, key.encode(), piece)
        for source in self.changed_totals:
            if (totals := self.totals.get(source)) is not None:
                writer = self.join_log if source.stage == "input" else self.detect_log
                writer.write(source.partition, COUNTS_KEY, encode_totals(totals))

    def committed(self) -> dict[PartitionTag, dict[tuple[str | None, str], int]]:
        """After a commit: the totals of the partitions whose counters it wrote."""
        done = {
            s: dict(totals)
            for s in self.changed_totals
            if (totals := self.totals.get(s)) is not None
        }
        self.changed_totals.clear()
        return done

    def discard_changes(self) -> None:
        """After a rollback (the partitions are then forgotten and restored)."""
        self.changed_totals.clear()

    # -- assignment ----------------------------------------------------------------------

    def restore(self, joins: Iterable[int], observations: Iterable[int]) -> Restored:
        """Fill the state of newly assigned join and observations partitions from their
        changelogs."""
        joins, observations = set(joins), set(observations)
        started = time.monotonic()
        restored, records = Restored(), 0
        for partition, part in restore(self.kafka, self.join_store, joins).items():
            records += part.records
            self.join_log.restored(partition, part.chunks)
            self.joins[partition] = ChangeTrackingStore(join_entries(part))
            restored.join_partitions.add(partition)
            tag = PartitionTag.of_input(partition)
            restored.totals[tag] = self.totals[tag] = part.totals
        for partition, part in restore(self.kafka, self.detect_store, observations).items():
            records += part.records
            self.detect_log.restored(partition, part.chunks)
            for key, value in part.values.items():
                model_id, piece = split_state_key(key.decode())
                self.pieces.setdefault(model_id, {})[piece] = value
                self.piece_partition[model_id] = partition
                if not piece:
                    self.legacy[model_id] = (partition, key)
            tag = PartitionTag.of_observations(partition)
            restored.totals[tag] = self.totals[tag] = part.totals
        log.info(
            "restored %d input and %d observations partitions from %d changelog records in %.1fs",
            len(joins),
            len(observations),
            records,
            time.monotonic() - started,
        )
        return restored

    def forget(self, joins: Iterable[int], observations: Iterable[int]) -> None:
        """Drop the state of partitions no longer assigned (or rolled back)."""
        joins, observations = set(joins), set(observations)
        self.join_log.forget(joins)
        self.detect_log.forget(observations)
        for partition in joins:
            self.joins.pop(partition, None)
            self.totals.pop(PartitionTag.of_input(partition), None)
        for partition in observations:
            self.totals.pop(PartitionTag.of_observations(partition), None)
        for model_id, partition in list(self.piece_partition.items()):
            if partition in observations:
                del self.piece_partition[model_id]
                self.pieces.pop(model_id, None)
        for model_id, (partition, _key) in list(self.legacy.items()):
            if partition in observations:
                del self.legacy[model_id]
