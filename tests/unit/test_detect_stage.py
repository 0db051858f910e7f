"""The detection processor with the Faust runtime's at-least-once safeguards, without Kafka:
each observation applied once, state saved and restored with what it applied, an alert already
on the topic not published again."""

from __future__ import annotations

import asyncio
import pickle
from dataclasses import dataclass, field
from datetime import timedelta

from detectors.bank import READ_FORMATS, DetectorBank
from detectors.config import BankConfig
from detectors.join_buffer import JoinedOutcome
from pipeline.detect import ModelDetection, RecentIdentities, observation_identity
from pipeline.effects import Effects, Observation, PartitionTag
from schemas.events import DriftAlert
from stream_app.runtimes.faust.detect_stage import DetectionStage
from stream_app.settings import Settings
from tests.factories import outcome, prediction


@dataclass
class TableStandIn:
    """The three things the stage does with the Faust table: get, data, send_changelog."""

    data: dict[bytes, bytes] = field(default_factory=dict)
    changelog: list[tuple[int, bytes]] = field(default_factory=list)

    def get(self, key: bytes) -> bytes | None:
        return self.data.get(key)

    def send_changelog(self, partition: int, key: bytes, _value: bytes | None) -> None:
        self.changelog.append((partition, key))


def drifting_outcomes(n: int = 600) -> list[JoinedOutcome]:
    """Right answers, then wrong ones: enough for the error-rate detectors to fire."""
    return [outcome(f"r{i}", i, wrong=i >= n // 2) for i in range(n)]


def stage(table: TableStandIn, published: list[DriftAlert] | None = None) -> DetectionStage:
    return DetectionStage(table, Settings(), lambda: published or [])


def observe(
    stage: DetectionStage, partition: int, observation: Observation, effects: Effects
) -> list[DriftAlert]:
    return stage.processor.observe(observation, partition, effects)


def pipeline_counts(effects: Effects) -> dict[str, int]:
    return {name: n for (_model, name, _source), n in effects.counts.items()}


def test_recent_identities_forget_the_oldest_past_capacity() -> None:
    recent = RecentIdentities(capacity=3)
    assert all(recent.add(i) for i in range(5))
    assert len(recent) == 3
    assert not recent.add(4)
    assert recent.add(0)  # forgotten, so new again


def test_an_observation_is_applied_once_and_that_survives_a_restore() -> None:
    first = outcome("a")
    model = ModelDetection.new(DetectorBank("m"), 100, timedelta(0), hold=False)
    assert model.fresh([first]) == [first]
    model.bank.observe([first])
    assert model.fresh([first]) == []
    assert model.fresh([prediction("a")]) == [prediction("a")]  # another kind: its own identity
    pieces = model.take_state_changes()
    restored = ModelDetection.restore("m", pieces, BankConfig(), dedupe_window=100)
    assert restored.fresh([first]) == []
    assert restored.bank.outcomes == 1
    assert observation_identity(first) != observation_identity(prediction("a"))


def test_alerts_already_published_are_suppressed_and_counted() -> None:
    observations = drifting_outcomes()
    live, effects = stage(TableStandIn()), Effects()
    raised = [a for o in observations for a in observe(live, 0, o, effects)]
    assert raised, "the shift should raise an alert"

    again, effects = stage(TableStandIn(), published=raised), Effects()
    fired = [a for o in observations for a in observe(again, 0, o, effects)]
    assert [a.alert_id for a in fired] == [a.alert_id for a in raised]
    assert asyncio.run(again.unpublished(fired, effects, 0)) == []
    assert pipeline_counts(effects) == {"suppressed_alerts": len(raised)}
    effects = Effects()
    assert asyncio.run(live.unpublished(raised, effects, 0)) == raised, "none was on the topic"
    assert pipeline_counts(effects) == {}


def test_changed_models_are_saved_to_their_partition_and_restored() -> None:
    table = TableStandIn()
    first, effects = stage(table), Effects()
    observations = drifting_outcomes(200)
    for o in observations[:100]:
        observe(first, 3, o, effects)
    first.save_changed()
    saved = [b"m/bank", b"m/deferred", b"m/detect", b"m/signal/error_rate"]  # no error yet: 0s
    saved += [
        b"m/source/" + name
        for name in (
            b"estimate",
            b"explain",
            b"explain_estimate",
            b"label_health",
            b"positive_class",
        )
    ]
    saved.append(b"m/source/volume")  # a new bank saves every source once
    assert sorted(table.changelog) == [(3, key) for key in saved]
    first.save_changed()
    assert len(table.changelog) == len(saved), "nothing changed: nothing saved"

    second, effects = stage(table), Effects()  # a worker that took the partition over
    for o in observations:
        observe(second, 3, o, effects)
    assert second.models["m"].bank.outcomes == 200
    assert pipeline_counts(effects) == {"replayed_observations": 100}


def test_a_snapshot_of_an_older_format_starts_the_model_afresh_and_is_counted() -> None:
    table = TableStandIn()
    first, effects = stage(table), Effects()
    for o in drifting_outcomes(100):
        observe(first, 3, o, effects)
    first.save_changed()
    _format, name, value = pickle.loads(table.data[b"m/bank"])
    older = min(READ_FORMATS) - 1
    table.data[b"m/bank"] = pickle.dumps((older, name, value))  # an older release's

    second, effects = stage(table), Effects()
    observe(second, 3, outcome("r-next", 100), effects)
    assert second.models["m"].bank.outcomes == 1
    assert effects.counts[("m", "detectors_reset", PartitionTag.of_observations(3))] == 1
