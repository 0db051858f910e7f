"""The detector bank on a seeded synthetic model: stable, then drifting at event 5,000.

Before the drift the model errs with probability 0.1 and feature ``x`` is N(0, 1); after it
the error rate is 0.3 and ``x`` is N(1.5, 1). Feature ``z``, the score and the predicted
class stay stable throughout.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from functools import cache

import numpy as np
import pytest

from detectors.bank import DetectorBank
from detectors.config import BankConfig, DetectorConfig
from detectors.join_buffer import JoinedOutcome
from schemas.events import DriftAlert, PredictionEvent
from stream_app.settings import DetectorSettings

T0 = datetime(2026, 1, 1, tzinfo=UTC)
DRIFT_AT = 5000
CONCEPT_DELAY = 1000
"""Labelled events after the drift within which the error-rate alerts must come."""
DATA_DELAY = 200
"""Predictions after the drift within which the feature alert must come."""

Step = tuple[PredictionEvent, JoinedOutcome]


@cache
def stream(n: int = 8000, seed: int = 2026, drift_at: int = DRIFT_AT) -> tuple[Step, ...]:
    rng = np.random.default_rng(seed)
    steps: list[Step] = []
    for i in range(n):
        drifted = i >= drift_at
        wrong = bool(rng.random() < (0.3 if drifted else 0.1))
        predicted = "a" if rng.random() < 0.5 else "b"
        truth = ("b" if predicted == "a" else "a") if wrong else predicted
        time = T0 + timedelta(seconds=i)
        event = PredictionEvent(
            request_id=f"r{i}",
            model_id="churn",
            model_version="7",
            timestamp=time,
            features={
                "x": float(rng.normal(1.5 if drifted else 0.0, 1.0)),
                "z": float(rng.normal()),
                "country": "NL",
            },
            prediction=predicted,
            score=float(rng.random()),
        )
        outcome = JoinedOutcome(
            request_id=event.request_id,
            model_id="churn",
            model_version="7",
            prediction_time=time,
            label_time=time + timedelta(seconds=30),
            prediction=predicted,
            label=truth,
            task="classification",
            error=float(wrong),
            score=event.score,
        )
        steps.append((event, outcome))
    return tuple(steps)


def feed(bank: DetectorBank, steps: tuple[Step, ...] | list[Step]) -> list[DriftAlert]:
    alerts: list[DriftAlert] = []
    for event, outcome in steps:
        alerts += bank.observe_prediction(event)
        alerts += bank.observe_outcome(outcome)
    return alerts


def index_of(alert: DriftAlert) -> int:
    return int((alert.event_time - T0).total_seconds())


def test_no_alert_on_a_long_stable_stream() -> None:
    assert feed(DetectorBank("churn"), stream(n=20_000, seed=7, drift_at=20_000)) == []


def test_drift_gives_one_concept_and_one_data_alert_per_detector() -> None:
    alerts = feed(DetectorBank("churn"), stream())

    assert sorted((a.signal, a.detector, a.kind) for a in alerts) == [
        ("error_rate", "adwin", "concept"),
        ("error_rate", "page_hinkley", "concept"),
        ("feature:x", "adwin", "data"),
    ]
    for alert in alerts:
        delay = index_of(alert) - DRIFT_AT
        assert 0 <= delay < (DATA_DELAY if alert.signal == "feature:x" else CONCEPT_DELAY)
        assert alert.severity == "critical"
        assert alert.detected_at == alert.event_time + (
            timedelta(seconds=30) if alert.kind == "concept" else timedelta(0)
        )
        assert alert.model_version == "7"
        assert alert.events_since_drift_start is not None
        assert alert.events_since_drift_start <= delay + 100
    concept = next(a for a in alerts if a.signal == "error_rate")
    assert concept.before.mean == pytest.approx(0.1, abs=0.02)
    assert concept.after.mean > 0.2
    data = next(a for a in alerts if a.signal == "feature:x")
    assert data.before.mean == pytest.approx(0.0, abs=0.1)
    assert data.after.mean == pytest.approx(1.5, abs=0.5)


def test_cooldown_gives_one_alert_per_drift_instead_of_a_storm() -> None:
    rng = np.random.default_rng(5)
    ramp = np.concatenate([np.full(3000, 0.05), np.linspace(0.05, 0.6, 6000)])
    steps = [
        (event, replace(outcome, error=float(rng.random() < rate)))
        for (event, outcome), rate in zip(stream(n=9000, seed=5), ramp, strict=True)
    ]
    config = BankConfig(data_detectors=(), concept_detectors=("adwin",))
    storm = feed(
        DetectorBank("churn", config.model_copy(update={"alert_cooldown_events": 0})), steps
    )
    calm_config = config.model_copy(update={"alert_cooldown_events": 10_000})
    calm = feed(DetectorBank("churn", calm_config), steps)
    assert len(storm) >= 3
    assert len(calm) == 1
    assert calm[0].alert_id == storm[0].alert_id


def test_alert_ids_are_deterministic_across_runs() -> None:
    first = feed(DetectorBank("churn"), stream())
    second = feed(DetectorBank("churn"), stream())
    assert first == second
    assert len({alert.alert_id for alert in first}) == len(first)


def test_detected_at_comes_from_the_caller_clock() -> None:
    bank = DetectorBank("churn")
    wall = datetime(2030, 1, 1, tzinfo=UTC)
    alerts = [
        alert
        for event, outcome in stream()
        for alert in bank.observe_prediction(event, wall) + bank.observe_outcome(outcome, wall)
    ]
    assert alerts
    assert {alert.detected_at for alert in alerts} == {wall}


@pytest.mark.parametrize("cut", [4900, 5100])
def test_snapshot_restore_mid_stream_gives_identical_alerts(cut: int) -> None:
    steps = stream()
    original = DetectorBank("churn")
    feed(original, steps[:cut])
    restored = DetectorBank.from_pieces("churn", original.state_pieces())
    assert feed(restored, steps[cut:]) == feed(original, steps[cut:])
    assert restored.summary() == original.summary()


def test_summary_shows_drift_and_rolling_error_rate() -> None:
    bank = DetectorBank("churn")
    feed(bank, stream()[:5600])
    summary = bank.summary()
    assert (summary.predictions, summary.outcomes, summary.model_version) == (5600, 5600, "7")
    assert summary.status == "drift"
    assert summary.error_rate is not None
    assert summary.error_rate == pytest.approx(0.3, abs=0.06)
    assert summary.accuracy == pytest.approx(1 - summary.error_rate)
    assert summary.mean_absolute_error is None
    assert summary.last_alert_id is not None
    assert set(summary.signals) == {
        "error_rate",
        "feature:x",
        "feature:z",
        "score",
        "predicted_class:a",
        "predicted_class:b",
        "estimated_accuracy",
        "category:country",
        *(
            f"{quality}:{name}"
            for quality in ("missing", "invalid")
            for name in ("x", "z", "country")
        ),
        "volume",
        "label_coverage",
        "label_delay",
    }
    assert summary.signals["feature:x"].status == "drift"
    assert summary.signals["feature:z"].status == "ok"
    assert summary.signals["error_rate"].detectors == {"adwin": "drift", "page_hinkley": "drift"}
    assert summary.signals["feature:z"].n == 5600


def test_status_stays_drift_while_the_shift_lasts_and_clears_when_it_is_gone() -> None:
    bank = DetectorBank("churn")
    feed(bank, stream(n=8000))  # 3000 values after the drift: well past the cooldown
    assert bank.summary().signals["error_rate"].status == "drift"
    recovered = stream(n=3000, seed=7, drift_at=3000)  # back to the old error rate
    alerts = feed(bank, recovered)
    summary = bank.summary()
    assert summary.signals["error_rate"].status == "ok", alerts
    assert summary.signals["feature:z"].status == "ok"


def test_summary_has_rolling_precision_and_recall_of_the_configured_positive_class() -> None:
    steps = stream()[:5600]
    window = BankConfig().recent_window
    recent = [outcome for _, outcome in steps[-window:]]
    predicted = [o for o in recent if o.prediction == "b"]
    actual = [o for o in recent if o.label == "b"]
    true_positives = sum(o.prediction == o.label == "b" for o in recent)
    config = DetectorConfig.from_settings(
        DetectorSettings(models={"churn": {"positive_label": "b"}})
    )
    bank = DetectorBank("churn", config.for_model("churn"))
    feed(bank, steps)
    summary = bank.summary()
    assert summary.figures["precision"] == pytest.approx(true_positives / len(predicted))
    assert summary.figures["recall"] == pytest.approx(true_positives / len(actual))
    assert summary.event_time == max(o.label_time for _, o in steps)
    never_predicted = DetectorBank("churn").summary()  # the default positive label "1"
    assert never_predicted.figures["precision"] is None


def test_positive_label_is_compared_as_text() -> None:
    config = BankConfig.model_validate({"positive_label": 1})
    assert config.positive_label == "1"
    bank = DetectorBank("churn", config)
    _, outcome = stream()[0]
    bank.observe_outcome(replace(outcome, prediction="1", label=1))
    assert (bank.summary().figures["precision"], bank.summary().figures["recall"]) == (1.0, 1.0)


def test_regression_outcomes_feed_abs_error_without_binary_detectors() -> None:
    config = BankConfig.from_settings(
        DetectorSettings(concept_detectors=["adwin", "ddm"]), data_detectors=()
    )
    bank = DetectorBank("churn", config)
    for _, outcome in stream()[:300]:
        bank.observe_outcome(replace(outcome, task="regression"))
    summary = bank.summary()
    assert summary.signals["abs_error"].detectors == {"adwin": "ok"}
    assert summary.error_rate is None
    assert summary.mean_absolute_error is not None
    assert (summary.figures["precision"], summary.figures["recall"]) == (None, None)


def test_events_of_another_model_are_refused() -> None:
    event, _ = stream()[0]
    with pytest.raises(ValueError, match="churn"):
        DetectorBank("fraud").observe_prediction(event)
