"""The detection stage of the worker: one :class:`~detectors.bank.DetectorBank` per model,
applied to each observation exactly once, through crashes and rebalances.

The worker's processing guarantee is Kafka's at-least-once: after a crash a worker re-reads
its input from the last committed offsets. Three things make that idempotent here:

- **Replayed observations are recognised.** The join stage may send an observation again when
  it re-reads its input (see :mod:`detectors.join`). Each model's state keeps the identities
  (kind and request id, hashed to 8 bytes) of the last ``dedupe_window`` observations it
  applied and skips one it has already seen.
- **State is saved at every commit.** A Faust sensor writes the snapshot of every changed model
  (bank and identities) to the ``detectors`` table just before Faust commits the consumer
  offsets, and Faust flushes the producer (changelog included) before the commit: the restored
  state never lags behind the committed offsets.
- **Alerts are published once.** Re-read observations make a restored bank raise the alerts it
  raised before the crash again, with the same deterministic ids. At the first alert after an
  assignment the ids already on the alerts topic (its last ``alerts_lookback`` records per
  partition) are read, and an alert among them is not published again.
"""

from __future__ import annotations

import asyncio
import hashlib
import pickle
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import faust

from detectors.bank import DetectorBank
from detectors.config import DetectorConfig
from detectors.join import JoinedOutcome
from schemas.events import DriftAlert, PredictionEvent

_STATE_FORMAT = 1


def observation_identity(observation: PredictionEvent | JoinedOutcome) -> int:
    """8 bytes that tell one observation from another: its kind and request id."""
    kind = b"O" if isinstance(observation, JoinedOutcome) else b"P"
    digest = hashlib.blake2b(kind + observation.request_id.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big")


@dataclass
class RecentIdentities:
    """The last ``capacity`` observation identities a model applied (a bounded set)."""

    capacity: int
    _order: deque[int] = field(default_factory=deque)
    _members: set[int] = field(default_factory=set)

    def add(self, identity: int) -> bool:
        """Remember ``identity``; False if it is already among the recent ones."""
        if identity in self._members:
            return False
        self._order.append(identity)
        self._members.add(identity)
        while len(self._order) > self.capacity:
            self._members.discard(self._order.popleft())
        return True

    def __len__(self) -> int:
        return len(self._order)


@dataclass
class ModelDetection:
    """A model's bank and the identities of the observations it applied: saved together."""

    bank: DetectorBank
    recent: RecentIdentities

    def snapshot(self) -> bytes:
        identities = list(self.recent._order)
        return pickle.dumps(
            (_STATE_FORMAT, self.bank.snapshot(), identities),
            protocol=pickle.HIGHEST_PROTOCOL,
        )

    @classmethod
    def restore(cls, data: bytes, dedupe_window: int) -> ModelDetection:
        """The saved state (only snapshots this deployment wrote: it is unpickled)."""
        state_format, bank, identities = pickle.loads(data)
        if state_format != _STATE_FORMAT:
            raise ValueError(f"not a detection snapshot of format {_STATE_FORMAT}")
        recent = RecentIdentities(dedupe_window)
        for identity in identities:
            recent.add(identity)
        return cls(DetectorBank.restore(bank), recent)

    def observe(self, observation: PredictionEvent | JoinedOutcome) -> list[DriftAlert] | None:
        """Apply one observation; its alerts, or None when it was applied before."""
        if not self.recent.add(observation_identity(observation)):
            return None
        if isinstance(observation, JoinedOutcome):
            return self.bank.observe_outcome(observation)
        return self.bank.observe_prediction(observation)


PublishedAlerts = Callable[[], Iterable[DriftAlert]]
"""Reads the alerts already on the alerts topic (its recent records)."""


class DetectionStage:
    """The banks of the models whose observation partitions this worker holds.

    ``table`` is the ``detectors`` table (model id -> snapshot bytes); ``published`` reads the
    alerts already published, once per assignment, at the first alert.
    """

    def __init__(
        self,
        table: Any,
        config: DetectorConfig,
        dedupe_window: int,
        published: PublishedAlerts,
    ) -> None:
        self.table = table
        self.config = config
        self.dedupe_window = dedupe_window
        self.read_published = published
        self.models: dict[str, ModelDetection] = {}
        self._partition: dict[str, int] = {}
        self._changed: set[str] = set()
        self._published: dict[str, set[str]] | None = None
        self._counts: dict[str, int] = {"replayed_observations": 0, "suppressed_alerts": 0}

    @property
    def banks(self) -> dict[str, DetectorBank]:
        return {model_id: model.bank for model_id, model in self.models.items()}

    def model(self, model_id: str, partition: int) -> ModelDetection:
        """The model's state: in memory, restored from the table, or new."""
        model = self.models.get(model_id)
        if model is None:
            snapshot = self.table.get(model_id.encode())
            if snapshot:
                model = ModelDetection.restore(snapshot, self.dedupe_window)
            else:
                bank = DetectorBank(model_id, self.config.for_model(model_id))
                model = ModelDetection(bank, RecentIdentities(self.dedupe_window))
            self.models[model_id] = model
        self._partition[model_id] = partition
        return model

    def observe(
        self, partition: int, observation: PredictionEvent | JoinedOutcome
    ) -> list[DriftAlert]:
        """Apply one observation (once); the alerts it raised (see :meth:`unpublished`)."""
        model_id = observation.model_id
        fired = self.model(model_id, partition).observe(observation)
        if fired is None:
            self._counts["replayed_observations"] += 1
            return []
        self._changed.add(model_id)
        return fired

    async def unpublished(self, fired: list[DriftAlert]) -> list[DriftAlert]:
        """The alerts of ``fired`` not on the alerts topic yet. The topic's tail is read (in a
        thread: the consumer blocks) at the first alert after an assignment."""
        if not fired:
            return []
        if self._published is None:
            published: dict[str, set[str]] = {}
            for alert in await asyncio.to_thread(lambda: list(self.read_published())):
                published.setdefault(alert.model_id, set()).add(alert.alert_id)
            self._published = published
        already = self._published.get(fired[0].model_id, set())
        new = [alert for alert in fired if alert.alert_id not in already]
        self._counts["suppressed_alerts"] += len(fired) - len(new)
        return new

    def take_counts(self) -> dict[str, int]:
        """Observations skipped as already applied, alerts not published again: since the
        last call."""
        counts = {name: n for name, n in self._counts.items() if n}
        self._counts = dict.fromkeys(self._counts, 0)
        return counts

    def save_changed(self) -> None:
        """Write the snapshot of every model changed since the last call to the table (its
        changelog partition is the model's observations partition)."""
        for model_id in self._changed:
            key, value = model_id.encode(), self.models[model_id].snapshot()
            self.table.data[key] = value
            self.table.send_changelog(self._partition[model_id], key, value)
        self._changed.clear()

    def forget(self) -> None:
        """After a rebalance: save, then drop everything (restored again when assigned)."""
        self.save_changed()
        self.models.clear()
        self._partition.clear()
        self._published = None


class SaveOnCommit(faust.Sensor):
    """Saves the detection state right before Faust commits offsets."""

    def __init__(self, stage: DetectionStage, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.stage = stage

    def on_commit_initiated(self, consumer: Any) -> Any:
        self.stage.save_changed()
        return super().on_commit_initiated(consumer)
