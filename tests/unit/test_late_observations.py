"""Observations stamped far behind their model's latest are counted, still applied."""

from __future__ import annotations

from detectors.config import DetectorConfig
from pipeline.detect import DetectProcessor
from pipeline.effects import Effects
from tests.factories import outcome, prediction


def late_counts(effects: Effects) -> int:
    return sum(n for (_m, name, _s), n in effects.counts.items() if name == "late_observations")


def test_only_what_is_later_than_the_lateness_is_counted_and_all_is_applied() -> None:
    detect, effects = DetectProcessor(DetectorConfig(), lateness_seconds=10), Effects()
    for request, second in [("a", 100), ("b", 95), ("c", 89), ("d", 120), ("e", 111)]:
        detect.observe(prediction(request, second), 0, effects)
    assert late_counts(effects) == 1  # "c", 11 s behind "a"; "e" is 9 s behind "d"
    detect.observe(outcome("f", 110), 0, effects)  # 10 s behind "d": not late
    detect.observe(outcome("g", 105), 0, effects)
    assert late_counts(effects) == 2
    model = detect.models["m"]
    summary = model.bank.summary()
    assert (summary.predictions, summary.outcomes) == (5, 2)
    assert model.bank.event_time == prediction("d", 120).timestamp
