"""What the processors take and what they return: records in, effects out.

A runtime turns each Kafka record it reads into an :class:`InputRecord` and hands it to a
processor together with an :class:`Effects` collector. The processor does no I/O: it appends
what should happen. The runtime then carries the effects out with its own means (a Kafka
transaction, Faust topics and tables, Redis pipelines, Prometheus metrics) and owns how atomic
that is.

>>> effects = Effects()
>>> effects.count("fraud", "predictions", source=PartitionTag.of_input(0))
>>> effects.count(None, "deadlettered", source=PartitionTag.of_input(0))
>>> effects.emit("deadletter", b"r1", b"{", [("driftstream-reason", b"Invalid JSON")])
>>> effects.counts[("fraud", "predictions", PartitionTag("input", 0))]
1
>>> [o.stream for o in effects.outputs], str(PartitionTag.of_observations(3))
(['deadletter'], 'o3')
"""

from __future__ import annotations

import functools
from collections import Counter
from dataclasses import dataclass, field
from typing import Literal, NamedTuple

from detectors.join_buffer import JoinedOutcome
from schemas.events import DriftAlert, PredictionEvent

OutputStream = Literal["observations", "alerts", "deadletter"]
"""The logical output topics; a runtime maps them to real names (``Topics``)."""

Observation = PredictionEvent | JoinedOutcome

CounterName = Literal[
    "predictions",
    "labels",
    "duplicate_predictions",
    "duplicate_labels",
    "joined",
    "expired_predictions",
    "orphan_labels",
    "evicted",
    "deadlettered",
    "wrong_partition",
    "detectors_reset",
    "replayed_observations",
    "late_observations",
    "alerts",
    "suppressed_alerts",
]
"""The counters the processors keep (per model, or for the pipeline as a whole)."""


class PartitionTag(NamedTuple):
    """The partition whose state owns a count: an input partition (where the join runs) or an
    ``observations`` partition (where the detection runs). ``str()`` gives its short form,
    ``i3`` or ``o1``, as Redis field names carry it."""

    stage: Literal["input", "observations"]
    partition: int

    def __str__(self) -> str:
        return f"{self.stage[0]}{self.partition}"

    @staticmethod
    @functools.cache
    def of_input(partition: int) -> PartitionTag:
        return PartitionTag("input", partition)  # one tag a partition, made once: every event

    @staticmethod
    @functools.cache
    def of_observations(partition: int) -> PartitionTag:
        return PartitionTag("observations", partition)


class InputRecord(NamedTuple):
    """One Kafka record as every runtime hands it over (``timestamp`` in seconds, or None).

    A named tuple: a runtime makes one per record, and a frozen dataclass costs several times
    as much to build (bench.profile)."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    timestamp: float | None = None
    origin: str | None = None
    """Where the record was first written, when a runtime moved it (a repartition hop)."""
    sizes: tuple[int, int] | None = None
    """Its key's and value's sizes as they came, when a runtime cut it to move it
    (:func:`pipeline.dead_letters.cut`)."""

    @property
    def source(self) -> str:
        """``topic/partition/offset`` where the record came from: what a dead letter names."""
        return self.origin or f"{self.topic}/{self.partition}/{self.offset}"


class Output(NamedTuple):
    """A record to produce: to a logical stream, with its key, value and headers."""

    stream: OutputStream
    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes]] | None = None


class DeadLettered(NamedTuple):
    """A record sent to the dead-letter stream: where it came from and why (what its
    ``driftstream-source`` and ``driftstream-reason`` headers say), for a runtime's log."""

    source: str
    reason: str


CountKey = tuple[str | None, CounterName, PartitionTag]
"""(model id or None for the pipeline as a whole, counter name, the partition that owns it)."""


@dataclass
class Effects:
    """Everything a batch of records asks the runtime to do.

    - ``outputs``: records to produce, in order;
    - ``observations``: the observations of ``outputs`` as objects, in order (the replay
      applies them without a round trip through bytes);
    - ``counts``: counter deltas per (model, name, source), the source being the partition
      whose state owns the count (:class:`PartitionTag`), so a runtime can keep exact totals
      in that partition's state;
    - ``alerts``: the alerts of ``outputs`` as objects, for the live view;
    - ``dead_letters``: the dead letters of ``outputs``, each with its source and reason;
    - ``changed_models``: models whose detector state changed (their summaries are due).
    """

    outputs: list[Output] = field(default_factory=list)
    observations: list[Observation] = field(default_factory=list)
    counts: Counter[CountKey] = field(default_factory=Counter)
    alerts: list[DriftAlert] = field(default_factory=list)
    dead_letters: list[DeadLettered] = field(default_factory=list)
    changed_models: set[str] = field(default_factory=set)

    def emit(
        self,
        stream: OutputStream,
        key: bytes | None,
        value: bytes | None,
        headers: list[tuple[str, bytes]] | None = None,
    ) -> None:
        self.outputs.append(Output(stream, key, value, headers))

    def count(
        self, model_id: str | None, name: CounterName, n: int = 1, *, source: PartitionTag
    ) -> None:
        if n:
            self.counts[(model_id, name, source)] += n

    def clear(self) -> None:
        """Forget everything (after the runtime carried it out)."""
        self.outputs.clear()
        self.observations.clear()
        self.counts.clear()
        self.alerts.clear()
        self.dead_letters.clear()
        self.changed_models.clear()
