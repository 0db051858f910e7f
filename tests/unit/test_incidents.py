"""Incidents: the alerts of one drift episode of a model share the first one's ``alert_id``."""

from __future__ import annotations

import random
from datetime import timedelta

from detectors.bank import DetectorBank
from detectors.config import BankConfig, DetectorConfig
from detectors.monitor import Firing
from detectors.policy import AlertPolicy
from detectors.signals import ERROR_RATE, SCORE, Signal
from pipeline.backtest import Backtest
from producers.simulator import ModelTraffic, simulate
from schemas.events import DriftAlert, WindowStats
from stream_app.alerts_feed import format_alert
from tests.factories import T0, outcome

HOUR = 3600.0


def alert(
    policy: AlertPolicy,
    second: float,
    signal: Signal = ERROR_RATE,
    detector: str = "adwin",
    model_version: str = "1",
) -> DriftAlert:
    """The alert of a critical firing detected ``second`` seconds after ``T0``."""
    stats = WindowStats(mean=0.1, n=100)
    firing = Firing(signal, detector, "critical", stats, stats, None)
    at = T0 + timedelta(seconds=second)
    raised = policy.consider(firing, 0, model_version, at, at)
    assert raised is not None
    return raised


def policy(gap: float = HOUR) -> AlertPolicy:
    return AlertPolicy("fraud", cooldown_events=0, incident_gap_seconds=gap)


def test_the_first_alert_opens_an_incident_named_after_it() -> None:
    judge = policy()
    assert judge.incident_id is None
    first = alert(judge, 0)
    assert first.incident_id == first.alert_id == judge.incident_id


def test_alerts_within_the_gap_of_the_latest_share_it_across_signals_and_detectors() -> None:
    judge = policy()
    first = alert(judge, 0)
    later = [
        alert(judge, 3000, detector="page_hinkley"),
        alert(judge, 6000, signal=SCORE),  # 6000 s after the first, 3000 after the latest
        alert(judge, 5000, signal=SCORE, detector="page_hinkley"),  # out of order: still in
        alert(judge, 9600),  # the latest stays 6000
    ]
    assert {a.incident_id for a in later} == {first.alert_id}
    assert len({first.alert_id, *(a.alert_id for a in later)}) == 5


def test_an_alert_after_a_longer_gap_opens_a_new_incident() -> None:
    judge = policy()
    first = alert(judge, 0)
    second = alert(judge, HOUR + 1, signal=SCORE)
    third = alert(judge, HOUR + 2)
    assert second.incident_id == second.alert_id != first.incident_id
    assert third.incident_id == second.alert_id == judge.incident_id


def test_a_new_model_version_opens_a_new_incident() -> None:
    judge = policy()
    first = alert(judge, 0)
    retrained = alert(judge, 10, model_version="2")
    assert retrained.incident_id == retrained.alert_id != first.incident_id
    assert alert(judge, 20, model_version="2").incident_id == retrained.alert_id


def test_gap_zero_joins_only_alerts_detected_at_the_same_time() -> None:
    judge = policy(gap=0)
    first = alert(judge, 0)
    same_time = alert(judge, 0, detector="page_hinkley")
    later = alert(judge, 0.001, signal=SCORE)
    assert same_time.incident_id == first.alert_id
    assert later.incident_id == later.alert_id != first.alert_id


def test_the_feed_line_says_new_incident_or_names_the_incident_joined() -> None:
    judge = policy()
    first, follow_up = alert(judge, 0), alert(judge, 10, signal=SCORE)
    assert format_alert(first).endswith(f"[{first.alert_id[:12]}] new incident")
    assert format_alert(follow_up).endswith(
        f"[{follow_up.alert_id[:12]}] incident [{first.alert_id[:12]}]"
    )
    older = follow_up.model_copy(update={"incident_id": None})  # from before incidents
    assert format_alert(older).endswith(f"[{follow_up.alert_id[:12]}]")
    assert "\n" not in format_alert(follow_up)


def replay(config: DetectorConfig | None = None) -> list[DriftAlert]:
    traffic = [
        ModelTraffic("fraud", "abrupt", 3000, seed=1, warmup=500),
        ModelTraffic("churn", "data-drift", 3000, seed=1, warmup=500),
    ]
    backtest = Backtest(ttl_seconds=600, max_pending=100_000, config=config)
    for event in simulate(traffic):
        backtest.process(event)
    backtest.finish()
    return backtest.alerts


def test_a_replay_of_the_same_stream_gives_the_same_incidents() -> None:
    alerts = replay()
    assert [(a.alert_id, a.incident_id) for a in alerts] == [
        (a.alert_id, a.incident_id) for a in replay()
    ]
    for model_id in ("fraud", "churn"):
        own = [a for a in alerts if a.model_id == model_id]
        assert len(own) >= 2, alerts  # an episode of several alerts, minutes of event time
        assert {a.incident_id for a in own} == {own[0].alert_id}


def test_the_bank_takes_the_gap_from_its_config() -> None:
    alerts = replay(DetectorConfig(default=BankConfig(incident_gap_seconds=0)))
    fraud = [a for a in alerts if a.model_id == "fraud"]
    assert len({a.detected_at for a in fraud}) == len(fraud) >= 2
    assert [a.incident_id for a in fraud] == [a.alert_id for a in fraud]


def test_a_restored_bank_keeps_its_open_incident() -> None:
    rng = random.Random(1)
    outcomes = [
        outcome(str(i), i, wrong=rng.random() < (0.1 if i < 4000 else 0.3)) for i in range(4800)
    ]
    config = BankConfig(incident_gap_seconds=60)
    bank = DetectorBank("m", config)
    first = [a for o in outcomes[:4150] for a in bank.observe_outcome(o)]
    assert len(first) == 1, "Page-Hinkley alerts at 4141, ADWIN later"
    restored = DetectorBank.from_pieces("m", bank.state_pieces(), config)
    later = [a for o in outcomes[4150:] for a in restored.observe_outcome(o)]
    assert later
    assert {a.incident_id for a in first + later} == {first[0].alert_id}
    assert restored.summary().incident_id == first[0].alert_id
