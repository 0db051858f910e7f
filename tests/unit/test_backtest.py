"""The offline replay core on a seeded simulated stream of three models, checked against its truth.

Model ``a`` drifts abruptly (concept), ``b`` is stable, ``c`` has its inputs shift (data); all
three are merged into one stream, as in a shared Kafka topic.
"""

from __future__ import annotations

from datetime import datetime

import pytest

from pipeline.backtest import Backtest
from producers.simulator import ModelTraffic, Truth, simulate
from schemas.events import DriftAlert, LabelEvent, PredictionEvent
from tests.factories import label, prediction

N_PREDICTIONS = 4000
CONCEPT_DELAY = 400
"""Labelled requests predicted after the drift start within which a concept alert must come."""
DATA_DELAY = 400
"""Predictions after the drift start within which a data alert must come."""

AnyEvent = PredictionEvent | LabelEvent
Stream = tuple[list[AnyEvent], dict[str, Truth]]


@pytest.fixture(scope="module")
def stream() -> Stream:
    traffic = [
        ModelTraffic(model_id, scenario, N_PREDICTIONS, seed=11)
        for model_id, scenario in (("a", "abrupt"), ("b", "stable"), ("c", "data-drift"))
    ]
    events = list(simulate(traffic))
    return events, {model.model_id: model.truth for model in traffic}


def replay(events: list[AnyEvent]) -> Backtest:
    backtest = Backtest(ttl_seconds=3600, max_pending=1_000_000)
    for event in events:
        backtest.process(event)
    backtest.finish()
    return backtest


@pytest.fixture(scope="module")
def replayed(stream: Stream) -> Backtest:
    return replay(stream[0])


def of(alerts: list[DriftAlert], model_id: str, kind: str) -> list[DriftAlert]:
    return [alert for alert in alerts if alert.model_id == model_id and alert.kind == kind]


def labelled_after(events: list[AnyEvent], model_id: str, start: datetime, until: datetime) -> int:
    """Requests of ``model_id`` predicted at or after ``start`` whose outcome was known by
    ``until`` (both sides arrived)."""
    predicted = {
        e.request_id: e.timestamp
        for e in events
        if isinstance(e, PredictionEvent) and e.model_id == model_id and e.timestamp >= start
    }
    return len(
        {
            e.request_id
            for e in events
            if isinstance(e, LabelEvent)
            and e.request_id in predicted
            and max(e.timestamp, predicted[e.request_id]) <= until
        }
    )


def test_abrupt_concept_drift_is_alerted_soon_after_it_starts(
    stream: Stream, replayed: Backtest
) -> None:
    events, truths = stream
    start = truths["a"].drift_start_time
    assert start is not None
    concept = of(replayed.alerts, "a", "concept")
    assert concept, "no concept alert for the abrupt drift"
    first = concept[0]
    assert first.signal == "error_rate"
    assert all(alert.detected_at > start for alert in concept)
    assert labelled_after(events, "a", start, first.detected_at) <= CONCEPT_DELAY


def test_stable_model_raises_no_alert(replayed: Backtest) -> None:
    assert [alert for alert in replayed.alerts if alert.model_id == "b"] == []
    report = replayed.summary().models["b"]
    assert report.counts.alerts == 0
    assert report.bank is not None
    assert report.bank.status == "ok"


def test_data_drift_is_alerted_after_it_starts(stream: Stream, replayed: Backtest) -> None:
    events, truths = stream
    start = truths["c"].drift_start_time
    assert start is not None
    data = of(replayed.alerts, "c", "data")
    assert data, "no data alert for the input shift"
    assert all(alert.event_time > start for alert in data)
    assert data[0].signal.startswith("feature:")
    until = data[0].event_time
    predictions_until_alert = sum(
        isinstance(e, PredictionEvent) and e.model_id == "c" and start <= e.timestamp <= until
        for e in events
    )
    assert predictions_until_alert <= DATA_DELAY


def test_replaying_the_same_stream_gives_the_same_alerts(
    stream: Stream, replayed: Backtest
) -> None:
    again = replay(stream[0])
    assert again.alerts == replayed.alerts
    assert [alert.alert_id for alert in again.alerts] == [a.alert_id for a in replayed.alerts]
    assert again.summary() == replayed.summary()


def test_counts_per_model_equal_the_truth(stream: Stream, replayed: Backtest) -> None:
    events, truths = stream
    summary = replayed.summary()
    assert summary.events == len(events)
    assert summary.evicted == 0
    assert summary.alerts == replayed.alerts
    assert set(summary.models) == set(truths)
    for model_id, truth in truths.items():
        report = summary.models[model_id]
        counts = report.counts
        assert counts.predictions == truth.predictions == N_PREDICTIONS
        assert counts.labels == truth.label_events
        assert counts.joined == truth.labels
        assert counts.duplicates == truth.duplicate_labels
        assert (counts.expired_predictions, counts.orphan_labels, counts.pending_labels) == (0,) * 3
        assert counts.pending_predictions == truth.predictions - truth.labels
        assert counts.alerts == sum(alert.model_id == model_id for alert in replayed.alerts)
        assert report.bank is not None
        assert (report.bank.predictions, report.bank.outcomes) == (truth.predictions, truth.labels)


def test_expired_predictions_and_orphan_labels_are_counted_per_model() -> None:
    backtest = Backtest(ttl_seconds=10, max_pending=5)
    events: list[AnyEvent] = [
        prediction("r1", 0, model_id="x"),  # never labelled: expires
        label("r2", 1, model_id="y"),  # never predicted: an orphan of model y, which has no bank
        prediction("r3", 5, model_id="x"),
        label("r3", 6, model_id="x"),  # joined
        label("r3", 7, model_id="x"),  # duplicate
        prediction("r4", 30, model_id="z"),
        label("r0", 30, model_id="z"),  # both sides pass r1's and r2's TTL: both expire
        *(prediction(f"r{i}", 26 + i, model_id="z") for i in range(5, 9)),  # cap 5: r0 goes
    ]
    for event in events:
        assert backtest.process(event) == []
    summary = backtest.summary()
    x, y, z = (summary.models[model_id] for model_id in "xyz")
    assert (x.counts.predictions, x.counts.labels, x.counts.joined) == (2, 2, 1)
    assert (x.counts.duplicates, x.counts.expired_predictions) == (1, 1)
    assert (y.counts.labels, y.counts.orphan_labels, y.bank) == (1, 1, None)
    assert (z.counts.predictions, z.counts.pending_predictions, summary.evicted) == (5, 5, 1)
    assert summary.events == len(events)


def test_history_is_a_point_per_hundred_observations_showing_the_drop(stream: Stream) -> None:
    events, truths = stream
    backtest = Backtest(ttl_seconds=3600, max_pending=1_000_000, history_every=100)
    for event in events:
        backtest.process(event)
    backtest.finish()
    assert backtest.alerts == replay(events).alerts  # recording changes no detection
    start = truths["a"].drift_start_time
    assert start is not None
    for model_id, truth in truths.items():
        points = backtest.history[model_id]
        assert len(points) == (truth.predictions + truth.labels) // 100
        assert [p.event_time for p in points] == sorted(p.event_time for p in points)
        # a point at the end of the batch that took the model past each hundred
        assert all(
            100 * (i + 1) <= p.predictions + p.outcomes < 100 * (i + 2)
            for i, p in enumerate(points)
        )
        assert all(p.precision is not None and p.recall is not None for p in points[5:])
        assert {"error_rate", "score"} <= set(points[-1].signals)
    drifting = backtest.history["a"]
    before = [p.accuracy for p in drifting if p.event_time < start and p.accuracy is not None]
    assert drifting[-1].accuracy is not None
    assert drifting[-1].accuracy < min(before[len(before) // 2 :]) - 0.1


def test_a_prediction_sent_twice_is_applied_once_as_by_the_worker() -> None:
    replay = Backtest(ttl_seconds=600, max_pending=1_000)
    events: list[PredictionEvent | LabelEvent] = [prediction("a", 0), prediction("a", 1)]
    for event in [*events, label("a", 2), label("a", 3)]:
        replay.process(event)
    model = replay.summary().models["m"]
    assert model.bank is not None
    assert (model.bank.predictions, model.bank.outcomes) == (1, 1)
    assert (model.counts.predictions, model.counts.duplicates, model.counts.joined) == (2, 2, 1)
