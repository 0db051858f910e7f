"""The detection processor in the Faust runtime: state in a Faust table, at-least-once safeguards.

Faust delivers records again after a crash (its commits are not transactional), so the
:class:`~pipeline.detect.DetectProcessor` runs with its at-least-once safeguards:

- **Replayed observations are recognised** (``dedupe_window`` identities per model).
- **Nothing is held back to reorder** (``hold=False``): Faust commits the offsets of what it
  handed over, so an observation held in memory would be lost in a crash. Each is applied as it
  comes; one stamped more than the lateness behind its kind's latest is counted in
  ``late_observations``.
- **State is saved at every commit.** A Faust sensor writes the state pieces that changed
  (``<model id>/<piece>``: :meth:`~pipeline.detect.DetectProcessor.take_state_changes`) to the
  ``detectors`` table just before Faust commits the consumer offsets, and Faust flushes the
  producer (changelog included) before the commit: the restored state never lags behind the
  committed offsets.
- **Alerts are published once.** A bank restored from the last commit raises the alerts it
  raised after it again, with the same deterministic ids; the ids already on the alerts topic
  (:class:`~pipeline.detect.PublishedAlerts`, read in a thread at the first alert after an
  assignment) are not published again.
"""

from __future__ import annotations

import asyncio
from typing import Any

import faust

from pipeline.detect import (
    ModelDetection,
    PublishedAlerts,
    split_state_key,
)
from pipeline.effects import Effects, PartitionTag
from schemas.events import DriftAlert
from stream_app.processors import detect_processor
from stream_app.settings import Settings


class DetectionStage:
    """The processor over the ``detectors`` table (``<model id>/<piece>`` -> bytes);
    ``published`` reads the alerts already on the alerts topic."""

    def __init__(
        self,
        table: Any,
        settings: Settings,
        published: Any,
    ) -> None:
        self.table = table
        self._pieces: dict[str, dict[str, bytes]] | None = None
        self.processor = detect_processor(
            settings,
            dedupe_window=settings.worker.dedupe_window,
            load=self._load,
            hold=False,  # Faust commits what it handed over: a held record would be lost
        )
        self.published = PublishedAlerts(published)

    @property
    def models(self) -> dict[str, ModelDetection]:
        return self.processor.models

    async def unpublished(
        self, fired: list[DriftAlert], effects: Effects, partition: int
    ) -> list[DriftAlert]:
        """The alerts of ``fired`` not on the alerts topic yet (the others are counted)."""
        if not fired:
            return []
        if not self.published.loaded:
            await asyncio.to_thread(self.published.load)  # the consumer blocks
        new = self.published.unpublished(fired)
        effects.count(
            None,
            "suppressed_alerts",
            len(fired) - len(new),
            source=PartitionTag.of_observations(partition),
        )
        return new

    def _load(self, model_id: str) -> dict[str, bytes]:
        """A model's pieces in the table (indexed by model at the first load after an
        assignment)."""
        if self._pieces is None:
            self._pieces = {}
            for key, value in self.table.data.items():
                owner, piece = split_state_key(key.decode())
                self._pieces.setdefault(owner, {})[piece] = value
        return self._pieces.get(model_id, {})

    def save_changed(self) -> None:
        """Write the pieces changed since the last call to the table (its changelog partition
        is the model's observations partition)."""
        for partition, state_key, value in self.processor.take_state_changes():
            key = state_key.encode()
            if value is None:
                self.table.data.pop(key, None)
            else:
                self.table.data[key] = value
            self.table.send_changelog(partition, key, value)

    def forget(self) -> None:
        """After a rebalance: save, then drop everything (restored again when assigned)."""
        self.save_changed()
        self.processor.revoke()
        self._pieces = None
        self.published.forget()


class SaveOnCommit(faust.Sensor):
    """Saves the detection state right before Faust commits offsets."""

    def __init__(self, stage: DetectionStage, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.stage = stage

    def on_commit_initiated(self, consumer: Any) -> Any:
        self.stage.save_changed()
        return super().on_commit_initiated(consumer)
