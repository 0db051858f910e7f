"""What the processors take and what they return: records in, effects out.

A runtime turns each Kafka record it reads into an :class:`InputRecord` and hands it to a
processor together with an :class:`Effects` collector. The processor does no I/O: it appends
what should happen. The runtime then carries the effects out with its own means (a Kafka
transaction, Faust topics and tables, Redis pipelines, Prometheus metrics) and owns how atomic
that is.

>>> effects = Effects()
>>> effects.count("fraud", "predictions", source="i0")
>>> effects.count(None, "deadlettered", source="i0")
>>> effects.emit("deadletter", b"r1", b"{", [("driftstream-reason", b"Invalid JSON")])
>>> effects.counts[("fraud", "predictions", "i0")], [o.stream for o in effects.outputs]
(1, ['deadletter'])
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Literal, NamedTuple

from detectors.join import JoinedOutcome
from schemas.events import DriftAlert, PredictionEvent

OutputStream = Literal["observations", "alerts", "deadletter"]
"""The logical output topics; a runtime maps them to real names (``Topics``)."""

Observation = PredictionEvent | JoinedOutcome


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


CountKey = tuple[str | None, str, str]
"""(model id or None for the pipeline as a whole, counter name, source partition tag)."""


@dataclass
class Effects:
    """Everything a batch of records asks the runtime to do.

    - ``outputs``: records to produce, in order;
    - ``observations``: the observations of ``outputs`` as objects, in order (the replay
      applies them without a round trip through bytes);
    - ``counts``: counter deltas per (model, name, source), the source being the tag of the
      partition whose state owns the count (``i3``: input partition 3, ``o1``: observations
      partition 1), so a runtime can keep exact totals in that partition's state;
    - ``alerts``: the alerts of ``outputs`` as objects, for the live view;
    - ``changed_models``: models whose detector state changed (their summaries are due).
    """

    outputs: list[Output] = field(default_factory=list)
    observations: list[Observation] = field(default_factory=list)
    counts: Counter[CountKey] = field(default_factory=Counter)
    alerts: list[DriftAlert] = field(default_factory=list)
    changed_models: set[str] = field(default_factory=set)

    def emit(
        self,
        stream: OutputStream,
        key: bytes | None,
        value: bytes | None,
        headers: list[tuple[str, bytes]] | None = None,
    ) -> None:
        self.outputs.append(Output(stream, key, value, headers))

    def count(self, model_id: str | None, name: str, n: int = 1, *, source: str) -> None:
        if n:
            self.counts[(model_id, name, source)] += n

    def clear(self) -> None:
        """Forget everything (after the runtime carried it out)."""
        self.outputs.clear()
        self.observations.clear()
        self.counts.clear()
        self.alerts.clear()
        self.changed_models.clear()
