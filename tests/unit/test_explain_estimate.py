"""Why the label-free ``estimated_accuracy`` fell (:class:`detectors.explain.EstimateExplainer`):
one request in ten is scored near the decision boundary, then, once the calibration is frozen
and with no label after it, every request of one country is; the alert names that country."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

from detectors.bank import DetectorBank
from detectors.config import BankConfig
from detectors.explain import EstimateExplainer
from detectors.join_buffer import JoinedOutcome
from schemas.events import DriftAlert, PredictionEvent

T0 = datetime(2026, 1, 1, tzinfo=UTC)
CALIBRATED = 1500  # requests with labels (the calibration takes the first 1,000 outcomes)
DRIFT = 4000  # from here country "c" is scored near the boundary


def request(i: int, rng: random.Random) -> tuple[PredictionEvent, JoinedOutcome | None]:
    country = rng.choice("aabc")
    uncertain = (country == "c" and i >= DRIFT) or rng.random() < 0.1
    score = rng.uniform(0.35, 0.65) if uncertain else rng.choice([0.03, 0.97])
    predicted = int(score > 0.5)
    at = T0 + timedelta(seconds=i)
    event = PredictionEvent(
        request_id=f"r{i}",
        model_id="m",
        model_version="1",
        timestamp=at,
        features={"country": country, "amount": rng.uniform(0, 100)},
        prediction=predicted,
        score=score,
    )
    if i >= CALIBRATED:
        return event, None
    label = int(rng.random() < score)  # a calibrated model
    outcome = JoinedOutcome(
        request_id=event.request_id,
        model_id="m",
        model_version="1",
        prediction_time=at,
        label_time=at,
        prediction=predicted,
        label=label,
        task="classification",
        error=float(predicted != label),
        score=score,
    )
    return event, outcome


def estimated_alerts(batch: int) -> tuple[list[DriftAlert], DetectorBank]:
    """The ``estimated_accuracy`` alerts of the stream taken ``batch`` observations at a time,
    and the bank."""
    bank, rng = DetectorBank("m", BankConfig()), random.Random(11)
    observations: list[PredictionEvent | JoinedOutcome] = []
    for i in range(7000):
        event, outcome = request(i, rng)
        observations += [event] if outcome is None else [event, outcome]
    alerts = []
    for start in range(0, len(observations), batch):
        alerts += bank.observe(observations[start : start + batch])
    return [a for a in alerts if a.signal == "estimated_accuracy"], bank


def test_an_estimated_accuracy_drop_names_the_country_scored_near_the_boundary() -> None:
    alerts, _bank = estimated_alerts(batch=1000)
    assert alerts, "the drop of the estimated accuracy is alerted"
    first = alerts[0]
    assert first.after.mean < first.before.mean
    assert first.explanation is not None
    top = first.explanation.slices[0]
    assert (top.feature, top.value) == ("country", "c")
    assert top.error_after is not None
    assert top.error_before is not None
    assert top.error_after > top.error_before + 0.2  # its estimated error rose
    assert not first.explanation.broad


def test_batches_give_the_same_explanation_in_a_piece_of_its_own_under_20_kib() -> None:
    one_at_a_time, _bank = estimated_alerts(batch=1)
    alerts, bank = estimated_alerts(batch=5000)
    assert alerts == one_at_a_time
    piece = bank.state_pieces()[EstimateExplainer.name]
    assert 5_000 < len(piece) < 20 * 1024
