"""The worker's Prometheus metrics in memory: values, label safety, the cardinality cap."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from detectors.bank import DetectorBank
from schemas.events import DriftAlert
from stream_app.metrics import MAX_LABEL_LENGTH, OTHER, WorkerMetrics, label_value
from tests.event_examples import ALERT
from tests.factories import outcome, prediction
from tests.monitoring import promtool
from tests.monitoring import samples as exposition_samples

HOSTILE_IDS = [
    'quote"} injected_metric 1\n# TYPE x counter',
    "back\\slash\\",
    "new\nline\r\ttab",
    "lone \ud800 surrogate",
    "ünïcødé ✓ 模型",
    "x" * 10_000,
    "",
]


def exposition(metrics: WorkerMetrics) -> str:
    return generate_latest(metrics.registry).decode()


def samples(metrics: WorkerMetrics, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    return exposition_samples(exposition(metrics), name)


def value(metrics: WorkerMetrics, name: str, **labels: str) -> float | None:
    return samples(metrics, name).get(tuple(sorted(labels.items())))


def alert(**overrides: Any) -> DriftAlert:
    return DriftAlert.model_validate({**ALERT, **overrides})


def test_counts_go_to_the_model_or_the_pipeline() -> None:
    metrics = WorkerMetrics()
    metrics.count("fraud", "predictions", 3)
    metrics.count("fraud", "predictions")
    metrics.count(None, "deadlettered", 2)
    assert value(metrics, "driftstream_model_events_total", model="fraud", event="predictions") == 4
    assert value(metrics, "driftstream_pipeline_events_total", event="deadlettered") == 2


def test_an_alert_is_counted_by_signal_and_detector_with_its_latency() -> None:
    metrics = WorkerMetrics()
    fired = alert()
    metrics.alert(fired, published_at=fired.detected_at + timedelta(seconds=0.3))
    labels = {"model": "fraud", "signal": "error_rate", "detector": "adwin", "kind": "concept"}
    assert value(metrics, "driftstream_alerts_total", **labels, severity="critical") == 1
    latency = samples(metrics, "driftstream_alert_latency_seconds_bucket")
    assert latency[(("kind", "concept"), ("le", "0.25"))] == 0
    assert latency[(("kind", "concept"), ("le", "0.5"))] == 1
    assert value(metrics, "driftstream_alert_latency_seconds_sum", kind="concept") == pytest.approx(
        0.3
    )


def test_gauges_follow_the_bank_summary() -> None:
    bank = DetectorBank("m")
    bank.observe_prediction(prediction("r0"))
    for i in range(40):
        bank.observe_outcome(outcome(str(i), i, wrong=i % 4 == 0))
    metrics = WorkerMetrics()
    metrics.set_summary(bank.summary())
    assert value(metrics, "driftstream_model_accuracy", model="m") == pytest.approx(0.75)
    assert value(metrics, "driftstream_model_error_rate", model="m") == pytest.approx(0.25)
    assert value(metrics, "driftstream_model_status", model="m") == 0
    estimate = value(
        metrics, "driftstream_signal_estimate", model="m", signal="error_rate", kind="concept"
    )
    assert estimate == pytest.approx(0.25)
    assert value(metrics, "driftstream_signal_estimate", model="m", signal="score", kind="data")
    assert value(metrics, "driftstream_model_mean_absolute_error", model="m") is None

    metrics.forget_model_gauges()
    assert samples(metrics, "driftstream_model_accuracy") == {}
    assert samples(metrics, "driftstream_signal_estimate") == {}


def test_consumer_lag_of_partitions_no_longer_held_disappears() -> None:
    metrics = WorkerMetrics()
    metrics.set_consumer_lag({("p", 0): 5, ("p", 1): 7})
    metrics.set_consumer_lag({("p", 1): 2})
    assert samples(metrics, "driftstream_consumer_lag") == {(("partition", "1"), ("topic", "p")): 2}


def test_consumed_messages_and_their_latency() -> None:
    metrics = WorkerMetrics()
    metrics.consumed_message("join", datetime.now(UTC).timestamp() - 2.0)
    metrics.consumed_message("join", None)  # no record time: counted, not timed
    assert value(metrics, "driftstream_consumed_messages_total", stage="join") == 2
    assert value(metrics, "driftstream_stage_latency_seconds_count", stage="join") == 1
    seconds = value(metrics, "driftstream_stage_latency_seconds_sum", stage="join")
    assert seconds is not None
    assert 2.0 <= seconds < 60


@pytest.mark.parametrize("hostile", HOSTILE_IDS)
def test_label_values_are_bounded_utf8(hostile: str) -> None:
    label = label_value(hostile)
    assert len(label) <= MAX_LABEL_LENGTH
    label.encode("utf-8")  # no lone surrogate left


def test_long_ids_stay_apart() -> None:
    a, b = "m" * 200 + "a", "m" * 200 + "b"
    assert label_value(a) != label_value(b)
    assert label_value("fraud") == "fraud"


def test_hostile_ids_cannot_break_the_exposition() -> None:
    metrics = WorkerMetrics(max_models=len(HOSTILE_IDS))
    for hostile in HOSTILE_IDS:
        metrics.count(hostile, "predictions")
        unchecked = alert().model_copy(update={"model_id": hostile, "signal": f"f:{hostile}"})
        metrics.alert(unchecked, published_at=datetime.now(UTC))
    text = exposition(metrics)
    models = {labels[1][1] for labels in samples(metrics, "driftstream_model_events_total")}
    assert models == {label_value(h) for h in HOSTILE_IDS}
    assert "injected_metric" not in {family.name for family in text_string_to_metric_families(text)}
    checked = promtool("check", "metrics", stdin=text)
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_models_past_the_cap_are_counted_under_other() -> None:
    metrics = WorkerMetrics(max_models=2, max_signals=1)
    for model_id in ("a", "b", "c", "d"):
        metrics.count(model_id, "predictions")
    metrics.alert(alert(model_id="d"), published_at=datetime.now(UTC))
    bank = DetectorBank("d")
    bank.observe_prediction(prediction("r", model_id="d"))
    metrics.set_summary(bank.summary())  # past the cap: no gauge

    by_model = {
        dict(labels)["model"]: n
        for labels, n in samples(metrics, "driftstream_model_events_total").items()
    }
    assert by_model == {"a": 1, "b": 1, OTHER: 2}  # nothing lost: the total is still 4
    assert value(
        metrics,
        "driftstream_alerts_total",
        model=OTHER,
        signal=OTHER,
        detector="adwin",
        kind="concept",
        severity="critical",
    )
    assert samples(metrics, "driftstream_model_status") == {}
    # c, d, the alert of d and the summary of d were refused their own model label
    assert value(metrics, "driftstream_metric_labels_capped_total", label="model") == 4


def test_signals_past_the_cap_get_no_gauge_and_are_counted() -> None:
    bank = DetectorBank("m")
    bank.observe_prediction(
        prediction("r")
    )  # feature:x, missing:x, invalid:x, score, predicted_class:a
    metrics = WorkerMetrics(max_signals=1)
    summary = bank.summary()
    metrics.set_summary(summary)
    assert len(samples(metrics, "driftstream_signal_estimate")) == 1
    capped = value(metrics, "driftstream_metric_labels_capped_total", label="signal")
    assert capped == len(summary.signals) - 1


def test_data_quality_problems_are_gauges_per_feature_and_problem() -> None:
    bank = DetectorBank("m")
    bank.observe_prediction(prediction("r0"))
    bank.observe_prediction(prediction("r1").model_copy(update={"features": {"x": "one"}}))
    bank.observe_prediction(prediction("r2").model_copy(update={"features": {}}))
    metrics = WorkerMetrics()
    metrics.set_summary(bank.summary())
    assert samples(metrics, "driftstream_data_quality_problems") == {
        (("feature", "x"), ("model", "m"), ("problem", "missing")): 1,
        (("feature", "x"), ("model", "m"), ("problem", "wrong_type")): 1,
        (("feature", "x"), ("model", "m"), ("problem", "out_of_range")): 0,
        (("feature", "x"), ("model", "m"), ("problem", "unseen_category")): 0,
    }
    metrics.forget_model_gauges()
    assert samples(metrics, "driftstream_data_quality_problems") == {}


def test_features_past_the_cap_get_no_quality_gauge_and_are_counted() -> None:
    bank = DetectorBank("m")
    bank.observe_prediction(prediction("r").model_copy(update={"features": {"a": 1.0, "b": "z"}}))
    metrics = WorkerMetrics(max_signals=1)
    metrics.set_summary(bank.summary())
    features = {
        dict(labels)["feature"] for labels in samples(metrics, "driftstream_data_quality_problems")
    }
    assert features == {"a"}  # the first feature; b came past the cap
    assert value(metrics, "driftstream_metric_labels_capped_total", label="feature") == 1
