"""Why the label-free ``estimated_accuracy`` fell (:class:`detectors.explain.EstimateExplainer`):
one request in ten is scored near the decision boundary, then, once the calibration is frozen
and with no label after it, every request of one country is; the alert names that country."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from detectors import explain
from detectors.bank import BANK_PIECE, DetectorBank, decode_piece, encode_piece
from detectors.calibration import PerformanceEstimate
from detectors.config import BankConfig
from detectors.explain import REFERENCE, EstimateExplainer, SliceExplainer
from detectors.join_buffer import JoinedOutcome
from detectors.signals import Signal, SignalValue
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


BINS = ("reference", "seen", "numbers", "texts", "features")
"""The keys of an explainer's state that hold its bins."""


def ignore(_signal: Signal, _value: SignalValue) -> None:
    """``emit`` for the explainers, which emit nothing."""


def observations(count: int) -> list[PredictionEvent | JoinedOutcome]:
    rng = random.Random(11)
    taken: list[PredictionEvent | JoinedOutcome] = []
    for i in range(count):
        event, outcome = request(i, rng)
        taken += [event] if outcome is None else [event, outcome]
    return taken


def explainer_states(bank: DetectorBank) -> tuple[dict[str, Any], dict[str, Any]]:
    """The outcomes' and the estimates' explainer's state, from the bank's pieces."""
    pieces = bank.state_pieces()
    return (
        decode_piece(SliceExplainer.name, pieces[SliceExplainer.name]),
        decode_piece(EstimateExplainer.name, pieces[EstimateExplainer.name]),
    )


def test_a_bank_bins_each_prediction_once_for_both_explainers_restored_too(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The two explainers share the bins: each prediction after the reference is binned once
    (one ``bin`` per feature), also after the bank is restored from its pieces, and both
    pieces still hold the same bins."""
    binned = 0
    bin_of = explain._Feature.bin

    def counted(feature: explain._Feature, value: float | str | None) -> int:
        nonlocal binned
        binned += 1
        return bin_of(feature, value)

    monkeypatch.setattr(explain._Feature, "bin", counted)
    stream = observations(3000)
    cut = len(stream) // 2
    bank = DetectorBank("m", BankConfig())
    bank.observe(stream[:cut])
    bank = DetectorBank.from_pieces("m", bank.state_pieces(), BankConfig())
    bank.observe(stream[cut:])
    outcomes, estimates = explainer_states(bank)
    assert estimates["estimates"] > 1000, "the estimates' explainer took predictions"
    assert {key: outcomes[key] for key in BINS} == {key: estimates[key] for key in BINS}
    width = len(outcomes["features"])
    assert width == 2
    assert binned == width * (3000 - REFERENCE)


def test_bound_explainers_take_each_the_row_of_the_prediction_given_in_any_order() -> None:
    """Explainers bound as a bank binds them, given each prediction in either order (and now and
    then twice), end where explainers binning apart end (given a copy the second time): neither
    takes the row of another prediction, and a prediction given twice counts twice."""
    config = BankConfig()
    estimate = PerformanceEstimate.for_bank(config, arrival_order=False)
    shared = (
        SliceExplainer.for_bank(config, arrival_order=False),
        EstimateExplainer.for_bank(config, arrival_order=False),
    )
    apart = (
        SliceExplainer.for_bank(config, arrival_order=False),
        EstimateExplainer.for_bank(config, arrival_order=False),
    )
    shared[1].bind({source.name: source for source in (estimate, *shared)})
    apart[1].bind({estimate.name: estimate})
    order = random.Random(3)
    for at, observation in enumerate(observations(7000)):
        if isinstance(observation, JoinedOutcome):
            for taker in (estimate, shared[0], apart[0]):
                taker.on_outcome(observation, ignore)
            continue
        for again in range(2 if at % 97 == 0 else 1):
            first = order.randrange(2)
            for explainer in (shared[first], shared[1 - first]):
                explainer.on_prediction(observation, ignore)
            copy = observation.model_copy() if again else observation
            for explainer in apart:
                explainer.on_prediction(copy, ignore)
    assert shared[1].state()["estimates"] > 1000
    for bound, alone in zip(shared, apart, strict=True):
        assert bound.state() == alone.state()
    explanation = shared[1].explain("estimated_accuracy", observed=5600, after=1700)
    assert explanation is not None
    assert explanation == apart[1].explain("estimated_accuracy", observed=5600, after=1700)
    assert (explanation.slices[0].feature, explanation.slices[0].value) == ("country", "c")


def test_a_bank_restored_without_the_estimates_piece_gives_that_explainer_bins_of_its_own() -> None:
    """A bank restored from pieces saved before the estimates' explainer was registered: that
    explainer starts afresh, its bins fixed from the predictions after the restore, not the
    outcomes' explainer's (which it does not share, they differ)."""
    stream = observations(4000)
    cut = len(stream) // 2
    bank = DetectorBank("m", BankConfig())
    bank.observe(stream[:cut])
    pieces = bank.state_pieces()
    del pieces[EstimateExplainer.name]
    state = decode_piece(BANK_PIECE, pieces[BANK_PIECE])
    state["sources"].remove(EstimateExplainer.name)
    pieces[BANK_PIECE] = encode_piece(BANK_PIECE, state)
    restored = DetectorBank.from_pieces("m", pieces, BankConfig())
    restored.observe(stream[cut:])
    alone = EstimateExplainer.for_bank(BankConfig(), arrival_order=False)
    for observation in stream[cut:]:
        if isinstance(observation, PredictionEvent):
            alone.on_prediction(observation, ignore)
    outcomes, estimates = explainer_states(restored)
    assert estimates["features"] is not None
    assert estimates["features"] != outcomes["features"]
    assert {key: estimates[key] for key in BINS} == {key: alone.state()[key] for key in BINS}
