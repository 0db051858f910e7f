"""A model that goes silent while other models keep sending (issue 28): one ``volume`` alert of
detector ``silence`` at its last prediction plus the gap its rate allows, the same at any
batching and whichever way it was revealed, once per gap, and none on quiet streams."""

from __future__ import annotations

import random
from datetime import timedelta

import pytest

from detectors.bank import DetectorBank
from detectors.volume import SILENCE_FLOOR_SECONDS
from pipeline.backtest import Backtest
from schemas.events import DriftAlert, LabelEvent, PredictionEvent
from tests.factories import T0, poisson_traffic

FLOOR = timedelta(seconds=SILENCE_FLOOR_SECONDS)
LATENESS = timedelta(seconds=2)


def merged(*streams: list[PredictionEvent]) -> list[PredictionEvent]:
    return sorted((e for stream in streams for e in stream), key=lambda e: e.timestamp)


def replay(events: list[PredictionEvent], size: int) -> list[DriftAlert]:
    backtest = Backtest(ttl_seconds=600, max_pending=100_000)
    alerts = []
    for start in range(0, len(events), size):
        alerts += backtest.process_many(events[start : start + size])
    return alerts + backtest.finish()


def silences(alerts: list[DriftAlert]) -> list[DriftAlert]:
    return [a for a in alerts if a.detector == "silence"]


def test_a_model_silent_while_another_sends_is_alerted_once_at_its_gap_at_any_batching() -> None:
    """A sends 10 per second for 300 s, then stops; B goes on to 500 s. The replay raises one
    alert on A, at A's last prediction plus its gap (the floor, at 10 per second), the same
    (id, times, incident) in batches of 1, 7 and the whole stream; with batches of one it comes
    as soon as B's clock, less the lateness, passes it, and never again while B sends."""
    a = poisson_traffic("a", [(0, 300)], 10.0, seed=1)
    events = merged(a, poisson_traffic("b", [(0, 500)], 10.0, seed=2))
    one_by_one = replay(events, 1)
    assert [a for a in one_by_one if a.detector != "silence"] == []
    (alert,) = silences(one_by_one)
    assert (alert.model_id, alert.signal, alert.detector) == ("a", "volume", "silence")
    assert alert.event_time == alert.detected_at == a[-1].timestamp + FLOOR
    assert alert.incident_id == alert.alert_id
    assert alert.before.mean == pytest.approx(10, rel=0.2)
    assert (alert.after.mean, alert.after.n) == (0.0, 0)
    for size in (7, len(events)):
        assert replay(events, size) == one_by_one, size
    backtest = Backtest(ttl_seconds=600, max_pending=100_000)
    revealed_by = next(e for e in events if backtest.process(e))
    assert revealed_by.model_id == "b"
    assert alert.event_time < revealed_by.timestamp - LATENESS <= alert.event_time + LATENESS


def test_the_silence_is_the_same_whichever_way_it_is_revealed_and_rearms() -> None:
    """A alone, with gaps of 100 s after 300 s and 10 s after 500 s, then stopping at 600 s:
    its own next prediction reveals the first gap; with B sending throughout, B's clock does,
    before A is back. Same alert (id, event time) either way; the 10 s gap is no silence; A
    sending again re-arms it, so its final stop is a second alert, with a new id."""
    a = poisson_traffic("a", [(0, 300), (400, 500), (510, 600)], 10.0, seed=3)
    alone = silences(replay(a, 500))
    with_b = silences(replay(merged(a, poisson_traffic("b", [(0, 800)], 10.0, seed=4)), 500))
    last_before_gap = max(e.timestamp for e in a if e.timestamp < T0 + timedelta(seconds=300))
    assert len(alone) == 1, "alone, A's final stop is never revealed"
    assert len(with_b) == 2
    first = alone[0]
    assert first.event_time == last_before_gap + FLOOR
    keys = [(s.alert_id, s.event_time, s.detected_at, s.before) for s in (first, with_b[0])]
    assert keys[0] == keys[1]
    assert with_b[1].alert_id != first.alert_id
    assert with_b[1].event_time == a[-1].timestamp + FLOOR


def test_the_bank_tells_the_silence_and_shows_it_in_the_volume_status() -> None:
    """Directly on the bank: no deadline before the rate is learned; while silent the volume
    signal's ``silence`` detector is in drift, and back to ok once the model sends again."""
    a = poisson_traffic("a", [(0, 300), (400, 420)], 10.0, seed=5)
    bank = DetectorBank("a")
    assert bank.silence_deadline is None
    before_gap = [e for e in a if e.timestamp < T0 + timedelta(seconds=300)]
    bank.observe(before_gap[:50])
    assert bank.silence_deadline is None, "not before the rate is learned"
    bank.observe(before_gap[50:])
    deadline = bank.silence_deadline
    assert deadline is not None
    assert deadline == before_gap[-1].timestamp + FLOOR
    assert bank.advance(deadline) == []
    (alert,) = bank.advance(deadline + timedelta(microseconds=1))
    assert bank.advance(deadline + timedelta(seconds=60)) == [], "once per gap"
    assert bank.summary().signals["volume"].detectors["silence"] == "drift"
    assert bank.summary().status == "drift"
    assert bank.summary().last_alert_id == alert.alert_id
    assert silences(bank.observe(a[len(before_gap) :])) == [], "revealed already"
    assert bank.summary().signals["volume"].detectors["silence"] == "ok"


@pytest.mark.parametrize("name", ["low traffic", "bursty"])
def test_low_traffic_and_bursty_streams_are_never_silent(name: str) -> None:
    """The quiet streams of ``bench.data_quality`` (one request every 8.7 minutes for 30 days;
    bursts of 20 on average at 0.5 per second), with the silence armed: no silence alert."""
    from bench.data_quality import SHAPED, shaped_events

    stream = next(s for s in SHAPED if s.name.startswith(name))
    events: list[PredictionEvent | LabelEvent] = list(shaped_events(stream, seed=1))
    backtest = Backtest(ttl_seconds=3600, max_pending=1_000_000)
    alerts = backtest.process_many(events) + backtest.finish()
    assert silences(alerts) == []
    assert backtest.banks["m"].silence_deadline is not None, "armed"


def test_a_silence_its_own_prediction_reveals_is_the_same_in_any_batch_split() -> None:
    """On the bank alone (its own next prediction reveals it): one prediction at a time, or
    batches that split the stream anywhere, give the same alerts (the silence first, at the
    prediction that revealed it, then the drop of ``volume``) and summary."""
    a = poisson_traffic("a", [(0, 300), (400, 500)], 10.0, seed=6)
    one_by_one = DetectorBank("a")
    expected = [alert for event in a for alert in one_by_one.observe([event])]
    assert [x.detector for x in expected if x.signal == "volume"] == ["silence", "poisson_cusum"]
    rng = random.Random(6)
    batched, start, alerts = DetectorBank("a"), 0, []
    while start < len(a):
        size = rng.choice([1, 7, 300, 2000])
        alerts += batched.observe(a[start : start + size])
        start += size
    assert alerts == expected
    assert batched.summary() == one_by_one.summary()
