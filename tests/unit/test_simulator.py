"""The simulator is reproducible, its drift is real, and its label stream has the asked shape."""

from __future__ import annotations

from collections import Counter
from statistics import fmean

import pytest

from producers import pacing
from producers.loan_data import SHIFTED_FEATURE
from producers.scenarios import (
    LATE_FACTOR,
    MISSING_FEATURE_NAME,
    SHIFTED_CATEGORY_FEATURE,
    SHIFTED_CATEGORY_VALUE,
    DriftSchedule,
    Scenario,
)
from producers.simulator import LabelPolicy, ModelTraffic, simulate
from schemas.codec import decode, encode
from schemas.events import LabelEvent, PredictionEvent

N_PREDICTIONS = 1500
Stream = list[PredictionEvent | LabelEvent]
DATA_CHANGES = (
    Scenario.CATEGORY_SHIFT,
    Scenario.MISSING_FEATURE,
    Scenario.SURGE,
    Scenario.LABELS_STOP,
    Scenario.LABELS_LATE,
)


@pytest.fixture(scope="module")
def runs() -> dict[Scenario, tuple[ModelTraffic, Stream]]:
    """One model per scenario, simulated together (the models share nothing but the clock)."""
    models = [ModelTraffic(f"m-{s}", s, N_PREDICTIONS, seed=11) for s in Scenario]
    events = list(simulate(models))
    return {
        model.schedule.scenario: (model, [e for e in events if e.model_id == model.model_id])
        for model in models
    }


def predictions_of(events: Stream) -> list[PredictionEvent]:
    return [e for e in events if isinstance(e, PredictionEvent)]


def drift_window(model: ModelTraffic) -> tuple[int, int]:
    """Where the drift starts and the index where its window ends."""
    start = model.truth.drift_start_index
    assert start is not None
    return start, start + model.truth.drift_width


def accuracy(events: Stream, start: int, stop: int) -> float:
    """Accuracy of the emitted predictions with index in [start, stop), against their labels."""
    truth = {e.request_id: e.label for e in events if isinstance(e, LabelEvent)}
    hits = [
        p.prediction == truth[p.request_id]
        for p in predictions_of(events)[start:stop]
        if p.request_id in truth
    ]
    return fmean(hits)


def test_same_seed_gives_the_same_bytes_and_another_seed_does_not() -> None:
    def run(seed: int) -> list[bytes]:
        models = [ModelTraffic(n, "gradual", 300, seed=seed, warmup=300) for n in ("a", "b")]
        return [encode(e) for e in simulate(models)]

    first = run(seed=5)
    assert first == run(seed=5)
    other = run(seed=6)
    assert len(set(first) & set(other)) == 0


def test_every_event_round_trips_through_the_codec(
    runs: dict[Scenario, tuple[ModelTraffic, Stream]],
) -> None:
    for _, events in runs.values():
        for event in events:
            assert decode(type(event), encode(event)) == event


def test_counts_and_ids_match_the_truth(runs: dict[Scenario, tuple[ModelTraffic, Stream]]) -> None:
    for model, events in runs.values():
        predictions = predictions_of(events)
        label_ids = Counter(e.request_id for e in events if isinstance(e, LabelEvent))
        assert model.truth.predictions == len(predictions) == N_PREDICTIONS
        assert len({p.request_id for p in predictions}) == N_PREDICTIONS
        assert model.truth.labels == len(label_ids)
        assert model.truth.duplicate_labels == sum(n - 1 for n in label_ids.values())
        assert set(label_ids) <= {p.request_id for p in predictions}


def test_label_coverage_delay_duplicates_and_early_labels_follow_the_policy() -> None:
    policy = LabelPolicy(coverage=0.6, mean_delay=20.0, early_prob=0.1, duplicate_prob=0.05)
    model = ModelTraffic("rates", "stable", 3000, seed=2, labels=policy, warmup=300)
    events = list(simulate([model]))
    predicted_at = {e.request_id: e.timestamp for e in predictions_of(events)}
    first_labels: dict[str, LabelEvent] = {}
    for event in events:
        if isinstance(event, LabelEvent):
            first_labels.setdefault(event.request_id, event)
    delays = [(e.timestamp - predicted_at[r]).total_seconds() for r, e in first_labels.items()]
    labelled = len(first_labels)
    assert labelled / len(predicted_at) == pytest.approx(0.6, abs=0.03)
    assert model.truth.duplicate_labels / labelled == pytest.approx(0.05, abs=0.015)
    assert sum(d < 0 for d in delays) == model.truth.early_labels
    assert model.truth.early_labels / labelled == pytest.approx(0.1, abs=0.02)
    assert fmean(d for d in delays if d > 0) == pytest.approx(20.0, rel=0.1)


def test_events_come_in_arrival_order_with_early_labels_before_their_prediction() -> None:
    policy = LabelPolicy(early_prob=0.3, duplicate_prob=0.0)
    model = ModelTraffic("order", "stable", 500, seed=4, labels=policy, warmup=100)
    events = list(simulate([model]))
    times = [e.timestamp for e in events]
    assert times == sorted(times)
    predicted: set[str] = set()
    early = 0
    for event in events:
        if isinstance(event, PredictionEvent):
            predicted.add(event.request_id)
        else:
            early += event.request_id not in predicted
    assert early > 100


def test_abrupt_concept_drift_drops_the_frozen_models_accuracy(
    runs: dict[Scenario, tuple[ModelTraffic, Stream]],
) -> None:
    model, events = runs[Scenario.ABRUPT]
    drift, _ = drift_window(model)
    assert drift == N_PREDICTIONS // 2
    before, after = accuracy(events, 0, drift), accuracy(events, drift, N_PREDICTIONS)
    assert before > 0.8
    assert before - after > 0.25
    assert model.truth.drift_start_time == predictions_of(events)[drift].timestamp


@pytest.mark.parametrize(
    "scenario", [Scenario.STABLE, Scenario.DATA_DRIFT, Scenario.CATEGORY_SHIFT]
)
def test_without_concept_drift_accuracy_holds(
    runs: dict[Scenario, tuple[ModelTraffic, Stream]], scenario: Scenario
) -> None:
    _, events = runs[scenario]
    middle = N_PREDICTIONS // 2
    before, after = accuracy(events, 0, middle), accuracy(events, middle, N_PREDICTIONS)
    assert before > 0.8
    assert after > before - 0.05


def test_data_drift_moves_an_input_distribution(
    runs: dict[Scenario, tuple[ModelTraffic, Stream]],
) -> None:
    model, events = runs[Scenario.DATA_DRIFT]
    drift, _ = drift_window(model)
    values = [p.features[SHIFTED_FEATURE] for p in predictions_of(events)]
    salaries = [v for v in values if isinstance(v, float)]
    assert len(salaries) == len(values)
    assert model.truth.drift_kind == "data"
    assert fmean(salaries[drift:]) > 1.15 * fmean(salaries[:drift])


def test_gradual_and_recurring_drift_follow_their_windows(
    runs: dict[Scenario, tuple[ModelTraffic, Stream]],
) -> None:
    gradual, events = runs[Scenario.GRADUAL]
    start, end = drift_window(gradual)
    assert (start, end) == (N_PREDICTIONS // 2, N_PREDICTIONS // 2 + N_PREDICTIONS // 5)
    baseline, drifted = accuracy(events, 0, start), accuracy(events, end, N_PREDICTIONS)
    assert baseline - drifted > 0.25
    assert (
        drifted < accuracy(events, start + (end - start) // 4, end - (end - start) // 4) < baseline
    )

    recurring, events = runs[Scenario.RECURRING]
    start, end = drift_window(recurring)
    baseline = accuracy(events, 0, start)
    assert baseline - accuracy(events, start, end) > 0.25
    assert accuracy(events, end, N_PREDICTIONS) > baseline - 0.05


@pytest.mark.parametrize("scenario", DATA_CHANGES)
def test_before_a_data_change_the_traffic_is_the_stable_traffic(scenario: Scenario) -> None:
    def run(scenario: Scenario) -> tuple[ModelTraffic, Stream]:
        model = ModelTraffic("same", scenario, 400, seed=3, warmup=300)
        return model, list(simulate([model]))

    changed, changed_events = run(scenario)
    _, stable_events = run(Scenario.STABLE)
    start, _ = drift_window(changed)
    assert changed.truth.drift_kind == "data"
    before = {p.request_id for p in predictions_of(stable_events)[:start]}

    def of_requests_before(events: Stream) -> list[bytes]:
        return [encode(e) for e in events if e.request_id in before]

    assert of_requests_before(changed_events) == of_requests_before(stable_events)
    assert [encode(e) for e in changed_events] != [encode(e) for e in stable_events]


def test_category_shift_makes_one_zipcode_common(
    runs: dict[Scenario, tuple[ModelTraffic, Stream]],
) -> None:
    model, events = runs[Scenario.CATEGORY_SHIFT]
    drift, _ = drift_window(model)
    zips = [p.features[SHIFTED_CATEGORY_FEATURE] for p in predictions_of(events)]

    def share(values: list[float | str | None]) -> float:
        return values.count(SHIFTED_CATEGORY_VALUE) / len(values)

    assert share(zips[:drift]) < 0.2
    assert share(zips[drift:]) > 0.45


def test_missing_feature_is_null_in_every_event_after_the_drift(
    runs: dict[Scenario, tuple[ModelTraffic, Stream]],
) -> None:
    model, events = runs[Scenario.MISSING_FEATURE]
    drift, _ = drift_window(model)
    values = [p.features[MISSING_FEATURE_NAME] for p in predictions_of(events)]
    assert values[:drift].count(None) == 0
    assert values[drift:].count(None) == N_PREDICTIONS - drift


def test_a_drift_width_ramps_a_data_change_in() -> None:
    model = ModelTraffic("ramp", Scenario.MISSING_FEATURE, 900, seed=1, warmup=300, drift_width=300)
    values = [p.features[MISSING_FEATURE_NAME] for p in predictions_of(list(simulate([model])))]
    assert values[:450].count(None) == 0
    assert values[525:675].count(None) / 150 == pytest.approx(0.5, abs=0.15)
    assert values[750:].count(None) == 150


def test_surge_multiplies_the_request_rate(
    runs: dict[Scenario, tuple[ModelTraffic, Stream]],
) -> None:
    model, events = runs[Scenario.SURGE]
    drift, _ = drift_window(model)
    times = [p.timestamp for p in predictions_of(events)]

    def per_second(first: int, last: int) -> float:
        return (last - first) / (times[last] - times[first]).total_seconds()

    assert 4 < per_second(drift, N_PREDICTIONS - 1) / per_second(0, drift - 1) < 6


def test_labels_stop_for_the_requests_after_the_drift(
    runs: dict[Scenario, tuple[ModelTraffic, Stream]],
) -> None:
    model, events = runs[Scenario.LABELS_STOP]
    drift, _ = drift_window(model)
    labelled = {e.request_id for e in events if isinstance(e, LabelEvent)}
    ids = [p.request_id for p in predictions_of(events)]
    assert sum(i in labelled for i in ids[:drift]) / drift == pytest.approx(0.8, abs=0.04)
    assert not labelled & set(ids[drift:])


def test_labels_come_later_for_the_requests_after_the_drift(
    runs: dict[Scenario, tuple[ModelTraffic, Stream]],
) -> None:
    model, events = runs[Scenario.LABELS_LATE]
    drift, _ = drift_window(model)
    predicted = {p.request_id: (i, p.timestamp) for i, p in enumerate(predictions_of(events))}
    delays: dict[bool, list[float]] = {False: [], True: []}
    for label in (e for e in events if isinstance(e, LabelEvent)):
        index, time = predicted[label.request_id]
        delays[index >= drift].append((label.timestamp - time).total_seconds())
    ratio = fmean(delays[True]) / fmean(delays[False])
    assert LATE_FACTOR * 0.8 < ratio < LATE_FACTOR * 1.2


def test_each_scenario_names_the_signal_that_detects_it() -> None:
    assert {s: s.watched_signal for s in Scenario} == {
        Scenario.STABLE: None,
        Scenario.ABRUPT: "error_rate",
        Scenario.GRADUAL: "error_rate",
        Scenario.RECURRING: "error_rate",
        Scenario.DATA_DRIFT: "feature:salary",
        Scenario.CATEGORY_SHIFT: "category:zipcode",
        Scenario.MISSING_FEATURE: "missing:hvalue",
        Scenario.SURGE: "volume",
        Scenario.LABELS_STOP: "label_coverage",
        Scenario.LABELS_LATE: "label_delay",
        Scenario.CONCEPT_CATEGORY: "error_rate",
        Scenario.CONCEPT_RANGE: "error_rate",
        Scenario.CONCEPT_BROAD: "error_rate",
    }


def test_schedules_validate_their_options() -> None:
    assert DriftSchedule.for_scenario(Scenario.ABRUPT, 100, drift_width=30).width == 0
    assert DriftSchedule.for_scenario(Scenario.STABLE, 100, drift_at=5).start is None
    with pytest.raises(ValueError, match="outside"):
        DriftSchedule.for_scenario(Scenario.ABRUPT, 100, drift_at=100)
    with pytest.raises(ValueError, match="between 0 and 1"):
        LabelPolicy(coverage=1.5)
    with pytest.raises(ValueError, match="unique"):
        simulate([ModelTraffic("same", n_predictions=1), ModelTraffic("same", n_predictions=1)])


def test_pacing_sleeps_to_hold_the_rate() -> None:
    now = [0.0]
    naps: list[float] = []

    def sleep(seconds: float) -> None:
        naps.append(seconds)
        now[0] += seconds

    assert list(pacing.paced("abcd", rate=2, clock=lambda: now[0], sleep=sleep)) == list("abcd")
    assert naps == [0.5, 0.5, 0.5]
