"""The data-quality, traffic and label-health signals, from events to detector values."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from detectors.bank import DetectorBank
from detectors.config import BankConfig
from detectors.join_buffer import JoinedOutcome
from detectors.label_health import LabelHealth
from detectors.monitor import SignalMonitor
from detectors.registry import DetectorSpec, build_detector
from detectors.signals import PredictionSignals, Signal
from detectors.volume import MAX_EMPTY_INTERVALS, SILENCE_FLOOR_SECONDS, TrafficVolume
from schemas.events import FeatureValue, PredictionEvent

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def event(i: int, seconds: float | None = None, **features: FeatureValue) -> PredictionEvent:
    return PredictionEvent(
        request_id=f"r{i}",
        model_id="m",
        model_version="1",
        timestamp=at(i if seconds is None else seconds),
        features=features,
        prediction="a",
    )


def values_of(signals: PredictionSignals, e: PredictionEvent) -> dict[str, float | str]:
    return {signal.name: value for signal, value in signals.extract(e)}


def test_a_feature_is_tracked_from_its_first_non_null_value_which_fixes_its_type() -> None:
    signals = PredictionSignals(max_features=2, max_classes=5, quality_reference=3)
    assert values_of(signals, event(0, age=None)) == {"predicted_class:a": 1.0}
    first = values_of(signals, event(1, age="41", city=3.0, extra=1.0))  # cap 2: extra ignored
    assert first["category:age"] == "41"
    assert first["feature:city"] == 3.0
    assert not any("extra" in name for name in first)
    later = values_of(signals, event(2, age=41.0))  # a number for a categorical feature
    assert (later["invalid:age"], later["missing:age"], later["missing:city"]) == (1.0, 0.0, 1.0)
    assert "category:age" not in later
    assert (signals.quality["age"].wrong_type, signals.quality["city"].missing) == (1, 1)


def test_values_outside_the_reference_are_invalid_but_still_feed_the_feature() -> None:
    signals = PredictionSignals(max_features=5, max_classes=5, quality_reference=3)
    for i, (x, c) in enumerate([(1.0, "a"), (5.0, "b"), (3.0, "a")]):  # the reference
        assert values_of(signals, event(i, x=x, c=c))["invalid:x"] == 0.0
    inside = values_of(signals, event(3, x=5.0, c="b"))
    outside = values_of(signals, event(4, x=5.5, c="z"))
    assert (inside["invalid:x"], inside["invalid:c"]) == (0.0, 0.0)
    assert (outside["invalid:x"], outside["invalid:c"]) == (1.0, 1.0)
    assert (outside["feature:x"], outside["category:c"]) == (5.5, "z")
    assert (signals.quality["x"].out_of_range, signals.quality["c"].unseen_category) == (1, 1)


def test_volume_gives_each_closed_interval_and_zeros_for_a_gap_up_to_a_cap() -> None:
    volume = TrafficVolume(interval_seconds=10, grace_seconds=0)
    assert volume.observe(at(5)) == []
    assert volume.observe(at(15)) == []  # the first interval was partial: not given out
    assert volume.observe(at(16)) == []
    assert volume.observe(at(4)) == []  # late: its interval was closed
    assert volume.late == 1
    assert volume.observe(at(25)) == [0.2]
    gap = volume.observe(at(25 + 10 * (MAX_EMPTY_INTERVALS + 50)))
    assert gap == [0.1] + [0.0] * MAX_EMPTY_INTERVALS
    assert volume.observe(at(25 + 10 * (MAX_EMPTY_INTERVALS + 51))) == [0.1]  # traffic again


def test_volume_waits_its_grace_for_predictions_out_of_event_time_order() -> None:
    rng = np.random.default_rng(3)
    times = np.sort(rng.uniform(0, 300, 3000))  # 10 per second
    arrivals = times + rng.uniform(0, 50, 3000)  # each up to 50 s late, as a backlog comes
    order = np.argsort(arrivals)
    strict = TrafficVolume(interval_seconds=10, grace_seconds=0)
    patient = TrafficVolume(interval_seconds=10, grace_seconds=60)
    rates = {
        v: [r for t in times[order] for r in v.observe(at(float(t)))] for v in (strict, patient)
    }
    assert strict.late > 1000
    assert np.mean(rates[strict]) < 6
    assert patient.late == 0
    assert all(5 < rate < 15 for rate in rates[patient]), rates[patient]


def test_label_health_sees_labels_stop_and_counts_labels_past_the_horizon() -> None:
    health = LabelHealth(horizon_seconds=30, interval_seconds=10)
    coverage: list[float] = []
    delays: list[float] = []
    for second in range(200):
        closed = health.prediction(at(second))
        coverage += closed.coverage
        delays += closed.delays
        if second < 100 and second % 2 == 0:  # half the predictions labelled, until 100 s
            health.outcome(at(second), label_time=at(second + 5 + second % 4))
    health.outcome(at(150), label_time=at(190))  # 40 s late: past the horizon
    assert health.uncounted == 1
    # Buckets close 40 s (horizon + interval) behind the predictions: those up to 150 s.
    assert len(coverage) == 150
    assert np.mean(coverage[:100]) == 0.5
    assert coverage[100:] == [0.0] * 50
    # 5 and 7 s fall in the bin [4, 5.66) s, given out as its middle, the others in [5.66, 8)
    assert sorted(delays) == [4.76] * 25 + [6.73] * 25


def test_deferred_leading_zeros_give_the_firings_of_the_plain_detector() -> None:
    rng = np.random.default_rng(9)
    values = [0.0] * 3000 + [float(x) for x in rng.random(2000) < 0.3]
    spec = DetectorSpec(name="adwin")
    monitor = SignalMonitor(Signal("missing:x", "data", binary=True), [spec], recent_window=500)
    fired = [i for i, value in enumerate(values) if monitor.update(value)]
    detector, plain = build_detector(spec), []
    for i, value in enumerate(values):
        detector.update(value)
        if detector.drift_detected:
            plain.append(i)
            detector = build_detector(spec)
    assert fired
    assert fired == plain
    assert monitor.n == len(values)


def test_a_category_shift_alert_names_the_values_that_moved() -> None:
    rng = np.random.default_rng(4)
    zips = [f"zip{i}" for i in range(9)]
    bank = DetectorBank("m", BankConfig(data_detectors=()))
    shifted = [0.6] + [0.05] * 8
    alerts = []
    for i in range(6000):
        value = str(rng.choice(zips, p=shifted if i >= 3000 else None))
        alerts += bank.observe_prediction(event(i, zip=value))
    (alert,) = [a for a in alerts if a.signal == "category:zip"]
    assert alert.detector == "g_test"
    assert 3000 <= (alert.event_time - T0).total_seconds() < 3600
    assert alert.moved is not None
    assert alert.moved[0].value == "zip0"
    assert alert.moved[0].before < 0.2 < 0.25 < alert.moved[0].after  # the window still mixes
    assert (alert.before.mean, alert.after.mean) == (alert.moved[0].before, alert.moved[0].after)
    summary = bank.summary().signals["category:zip"]
    assert summary.status == "drift"


def test_label_delay_and_coverage_reach_the_bank_summary() -> None:
    config = BankConfig(label_horizon_seconds=60, volume_interval_seconds=10)
    bank = DetectorBank("m", config)
    for i in range(400):
        bank.observe_prediction(event(i))
        if i % 4:
            bank.observe_outcome(
                JoinedOutcome(
                    request_id=f"r{i}",
                    model_id="m",
                    model_version="1",
                    prediction_time=at(i),
                    label_time=at(i + 20),
                    prediction="a",
                    label="a",
                    task="classification",
                    error=0.0,
                    score=None,
                )
            )
    signals = bank.summary().signals
    assert signals["label_coverage"].estimate == pytest.approx(0.75, abs=0.01)  # 7 or 8 of 10
    assert signals["label_delay"].estimate == 19.0  # 20 s, the middle of its bin [16, 22.6) s
    assert signals["volume"].estimate == 1.0


def test_traffic_that_stops_and_resumes_is_a_volume_drop() -> None:
    rng = np.random.default_rng(2)
    bank = DetectorBank("m", BankConfig(data_detectors=()))
    times = np.cumsum(rng.exponential(0.1, 10_000))  # 10 per second for 1,000 s
    times = np.concatenate([times, times[-1] + 600 + np.cumsum(rng.exponential(0.1, 1000))])
    alerts = [a for i, t in enumerate(times) for a in bank.observe_prediction(event(i, float(t)))]
    (silence,) = [a for a in alerts if a.detector == "silence"]  # the gap itself, once
    floor = timedelta(seconds=SILENCE_FLOOR_SECONDS)
    assert silence.event_time == event(9999, float(times[9999])).timestamp + floor
    (drop,) = [a for a in alerts if a.signal == "volume" and a.detector != "silence"]
    assert (drop.event_time - T0).total_seconds() > times[9999]  # seen when traffic resumed
    assert drop.before.mean == pytest.approx(10, rel=0.1)
    assert drop.after.mean < 2


def test_what_comes_too_late_for_volume_and_label_health_is_counted_in_the_summary() -> None:
    bank = DetectorBank("m", BankConfig(label_horizon_seconds=60, volume_grace_seconds=0))
    for i in range(100):
        bank.observe_prediction(event(i))
    bank.observe_prediction(event(100, seconds=5))  # its interval was given out long ago
    late_label = JoinedOutcome(
        request_id="r50",
        model_id="m",
        model_version="1",
        prediction_time=at(50),
        label_time=at(50 + 61),  # past the 60 s horizon
        prediction="a",
        label="a",
        task="classification",
        error=0.0,
        score=None,
    )
    bank.observe_outcome(late_label)
    summary = bank.summary()
    assert (summary.figures["late_for_volume"], summary.figures["labels_past_horizon"]) == (1, 1)


def _poisson_rates(rng: np.random.Generator, means: list[float], interval: float) -> list[float]:
    return [float(count) / interval for count in rng.poisson(means)]


@pytest.mark.parametrize("after", [5.0, 0.0], ids=["surge", "drop"])
def test_a_5x_surge_or_a_drop_to_zero_is_seen_within_2_intervals_of_10_of_history(
    after: float,
) -> None:
    """At 100 requests per second, 10 s intervals: 10 intervals of history, then the change."""
    for seed in range(20):
        rng = np.random.default_rng(seed)
        detector = build_detector(DetectorSpec(name="poisson_cusum"))
        rates = _poisson_rates(rng, [1000.0] * 10 + [1000.0 * after] * 2, 10.0)
        fired = [
            i for i, rate in enumerate(rates) if detector.update(rate) or detector.drift_detected
        ]
        assert fired, seed
        assert 10 <= fired[0] <= 11, (seed, fired)


def test_the_volume_rate_cusum_is_quiet_on_bursty_and_diurnal_traffic() -> None:
    """Bursts (a geometric number of requests, mean 20, per arrival; the mean rate steady) and
    a rate that doubles and halves over a day, 10 s intervals for 2 days: no firing."""
    rng = np.random.default_rng(5)
    seconds = np.arange(0, 2 * 86_400, 10.0)
    diurnal = 100 * 2 ** np.sin(2 * np.pi * seconds / 86_400)
    bursts = [float(rng.geometric(1 / 20, n).sum()) / 10 for n in rng.poisson(50, 5000)]
    for rates in (_poisson_rates(rng, list(diurnal * 10), 10.0), bursts):
        detector = build_detector(DetectorSpec(name="poisson_cusum"))
        fired = [
            i for i, rate in enumerate(rates) if detector.update(rate) or detector.drift_detected
        ]
        assert fired == []


def test_the_volume_interval_grows_to_the_model_rate() -> None:
    """One request every 8.7 minutes is judged on intervals of 32 requests or more; 100 a
    second stays on the configured 10 s."""
    config = BankConfig(volume_interval_seconds=10, volume_grace_seconds=0)
    slow = TrafficVolume.for_bank(config, arrival_order=False)
    fast = TrafficVolume.for_bank(config, arrival_order=False)
    rates = [r for i in range(400) for r in slow.observe(at(i * 522.0))]
    for i in range(30_000):
        fast.observe(at(i / 100))
    assert slow.interval_seconds == 10 * 2**11  # 39 requests per interval
    assert fast.interval_seconds == 10
    assert np.mean(rates[-10:]) == pytest.approx(1 / 522, rel=0.3)


def test_the_label_horizon_is_learnt_and_labels_that_stop_are_seen_within_3_p99() -> None:
    """Labels 2 s late on average (exponential: p99 9.2 s), 10 predictions a second: the
    horizon becomes twice the p99 (its bin's upper edge), and coverage values of 0 come
    within 3 p99 + 1 interval of the labels stopping."""
    rng = np.random.default_rng(8)
    health = LabelHealth(horizon_seconds=3600, interval_seconds=10, learned=True, slack_seconds=0)
    zeros_from = None
    for i in range(6000):
        second = i / 10
        closed = health.prediction(at(second))
        if second > 400 and zeros_from is None and closed.coverage and not any(closed.coverage):
            zeros_from = second
        if second < 400 and rng.random() < 0.8:
            health.outcome(at(second), label_time=at(second + rng.exponential(2.0)))
    assert 18 <= health.horizon <= 23
    assert zeros_from is not None
    assert zeros_from - 400 <= 3 * 9.2 + 10


def test_volume_hands_out_no_interval_too_short_for_a_low_rate() -> None:
    """One request every 500 s: the intervals of 10 s that close before the interval has
    lengthened to the model's rate would be zeros read as a drop; they are not handed out."""
    volume = TrafficVolume(interval_seconds=10, grace_seconds=0, adaptive=True)
    short = []
    for i in range(200):
        rates = volume.observe(at(500 * i))
        short += [rate for rate in rates if volume.interval_seconds < 10_000]
    assert volume.interval_seconds >= 10_000
    assert len(short) <= 1, short  # the first closed, before the rate was known


def test_bursty_traffic_is_judged_on_intervals_its_bursts_average_out_in() -> None:
    """Bursts of 20 requests on average, 0.5 bursts a second: 100 requests per 10 s, but an
    effective count of about 2.5 (variance over mean about 40). The interval lengthens until
    the effective count reaches the target, and the bursts raise no volume alert."""
    from bench.data_quality import SHAPED, shaped_events
    from pipeline.backtest import Backtest

    bursty = next(stream for stream in SHAPED if stream.name.startswith("bursty"))
    volume = TrafficVolume(interval_seconds=10, grace_seconds=0, adaptive=True)
    events = list(shaped_events(bursty, seed=1))
    for event in events:
        if isinstance(event, PredictionEvent):
            volume.observe(event.timestamp)
    assert volume.dispersion() > 10
    assert volume.interval_seconds >= 80
    backtest = Backtest(ttl_seconds=3600, max_pending=1_000_000)
    alerts = backtest.process_many(events) + backtest.finish()
    assert [a for a in alerts if a.signal == "volume"] == []
