"""The label-free performance estimate: the calibration, and the bank's ``estimated_accuracy``.

The synthetic model is calibrated (a request is positive with the probability its score says);
normally one request in seven scores near the decision boundary (0.35 to 0.65), the others
far from it. The estimate should match the realised rates while the scores keep that
distribution, fall when they move toward the boundary (labelled or not), and miss a pure
concept change, which leaves the scores as they were.
"""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pytest

from detectors.bank import DetectorBank
from detectors.calibration import ScoreCalibration
from detectors.config import BankConfig
from detectors.join_buffer import JoinedOutcome
from schemas.events import DriftAlert, PredictionEvent
from tests.factories import T0


def traffic(
    n: int, *, seed: int, near_boundary: float = 1 / 7, flipped: bool = False, start: int = 0
) -> list[tuple[PredictionEvent, JoinedOutcome]]:
    """Predictions of a calibrated binary model and their outcomes, a share ``near_boundary``
    of them scored between 0.35 and 0.65; ``flipped`` labels are of the other class."""
    rng = np.random.default_rng(seed)
    steps = []
    for i in range(start, start + n):
        far = float(rng.choice([0.05, 0.15, 0.85, 0.95]))
        score = float(rng.uniform(0.35, 0.65)) if rng.random() < near_boundary else far
        positive = bool(rng.random() < score) != flipped
        predicted = int(score > 0.5)
        time = T0 + timedelta(seconds=i)
        event = PredictionEvent(
            request_id=f"r{i}",
            model_id="m",
            model_version="1",
            timestamp=time,
            features={},
            prediction=predicted,
            score=score,
        )
        outcome = JoinedOutcome(
            request_id=f"r{i}",
            model_id="m",
            model_version="1",
            prediction_time=time,
            label_time=time + timedelta(seconds=1),
            prediction=predicted,
            label=int(positive),
            task="classification",
            error=float(predicted != positive),
            score=score,
        )
        steps.append((event, outcome))
    return steps


def feed(
    bank: DetectorBank, steps: list[tuple[PredictionEvent, JoinedOutcome]], *, labels: bool = True
) -> list[DriftAlert]:
    alerts: list[DriftAlert] = []
    for event, outcome in steps:
        alerts += bank.observe_prediction(event)
        if labels:
            alerts += bank.observe_outcome(outcome)
    return alerts


def test_bins_keep_equal_scores_together_and_hold_at_least_min_bin() -> None:
    calibration = ScoreCalibration(outcomes=130, min_bin=50)
    scores = [0.1] * 70 + [0.2] * 30 + [0.3] * 30  # 70 | 60 (the last 30 join the 30 before)
    for index, score in enumerate(scores):
        assert calibration.rates(score, False) is None  # not frozen yet
        calibration.learn(score, False, correct=index % 2 == 0, positive=score == 0.3)
    assert calibration.frozen
    low, high = calibration.rates(0.1, False), calibration.rates(0.25, False)
    assert low is not None
    assert high is not None
    assert (low.correct, low.positive) == (0.5, 0.0)
    assert high.positive == 0.5
    assert calibration.rates(0.9, False) == high  # above the reference: the last bin
    assert calibration.rates(0.1, True) is None  # no reference outcome predicted positive
    calibration.learn(0.1, False, correct=False, positive=True)  # frozen: ignored
    assert calibration.rates(0.1, False) == low


def test_no_calibration_without_reference_outcomes() -> None:
    calibration = ScoreCalibration(outcomes=0)
    calibration.learn(0.5, True, correct=True, positive=True)
    assert not calibration.frozen
    bank = DetectorBank("m", BankConfig(calibration_outcomes=0))
    feed(bank, traffic(200, seed=1))
    assert bank.summary().estimated_accuracy is None
    assert "estimated_accuracy" not in bank.summary().signals


def test_estimate_matches_the_realised_rates_while_the_scores_keep_their_distribution() -> None:
    bank = DetectorBank("m")
    feed(bank, traffic(3000, seed=2))
    summary = bank.summary()
    assert summary.accuracy is not None
    assert summary.estimated_accuracy == pytest.approx(summary.accuracy, abs=0.03)
    assert summary.figures["estimated_precision"] == pytest.approx(
        summary.figures["precision"], abs=0.04
    )
    assert summary.figures["estimated_recall"] == pytest.approx(summary.figures["recall"], abs=0.04)
    assert summary.signals["estimated_accuracy"].kind == "data"


MAX_DELAY = 100
"""Predictions after the move within which ``estimated_accuracy`` must alert (README: the
80th in each seed)."""


@pytest.mark.parametrize(("reference_seed", "moved_seed"), [(3, 4), (5, 6), (7, 8)])
def test_inputs_moving_toward_the_boundary_alert_without_any_label_after_the_move(
    reference_seed: int, moved_seed: int
) -> None:
    bank = DetectorBank("m")
    assert feed(bank, traffic(3000, seed=reference_seed)) == []
    before = bank.summary()
    assert before.signals["score"].detectors, "the score signal is watched"
    moved = traffic(1000, seed=moved_seed, near_boundary=1.0, start=3000)
    alerted_at: list[tuple[int, DriftAlert]] = [
        (at, alert)
        for at, step in enumerate(moved, start=1)
        for alert in feed(bank, [step], labels=False)
    ]
    after = bank.summary()
    estimate = [(at, a) for at, a in alerted_at if a.signal == "estimated_accuracy"]
    assert estimate, alerted_at
    at, first = estimate[0]
    assert at <= MAX_DELAY, f"estimated_accuracy alerted at the {at}th prediction after the move"
    assert first.kind == "data"
    assert first.after.mean < first.before.mean - 0.1
    assert [a for _, a in alerted_at if a.signal == "score"] == []  # its mean stays near 0.5
    assert (after.outcomes, after.accuracy) == (before.outcomes, before.accuracy)  # no labels
    recent = moved[-BankConfig().recent_window :]  # labelled here, not given to the bank
    realised = 1 - sum(outcome.error for _, outcome in recent) / len(recent)
    assert after.estimated_accuracy is not None
    assert after.estimated_accuracy == pytest.approx(realised, abs=0.08)


def test_a_pure_concept_change_leaves_the_estimate_where_it_was() -> None:
    bank = DetectorBank("m")
    feed(bank, traffic(3000, seed=5))
    alerts = feed(bank, traffic(1000, seed=6, flipped=True, start=3000))
    summary = bank.summary()
    assert summary.accuracy is not None
    assert summary.accuracy < 0.2
    assert summary.estimated_accuracy is not None
    assert summary.estimated_accuracy > 0.85
    assert {a.signal for a in alerts} == {"error_rate"}
