"""The bank in batches: any split of a stream gives the alerts and the summary of one observation
at a time, and its state is pieces of bounded size, saved as they change, restored exactly."""

from __future__ import annotations

import pickle
import random
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from detectors.bank import (
    BANK_PIECE,
    DEFERRED_PIECE,
    READ_FORMATS,
    SIGNAL_PIECE,
    DetectorBank,
    SnapshotFormatError,
    decode_piece,
)
from detectors.config import BankConfig
from detectors.join_buffer import JoinedOutcome
from schemas.events import DriftAlert, PredictionEvent
from tests.unit.test_bank import stream

Observation = PredictionEvent | JoinedOutcome
T0 = datetime(2026, 1, 1, tzinfo=UTC)


def dirty_stream() -> list[Observation]:
    """The bank tests' stream (drift at 5,000), each outcome 30 observations after its
    prediction, with missing and wrongly typed values of ``x``, a feature and a class that
    appear late, and a burst of out-of-range values of ``z``."""
    rng = random.Random(7)
    observations: list[Observation] = []
    outcomes: list[JoinedOutcome] = []
    for i, (event, outcome) in enumerate(stream()[:6500]):
        features: dict[str, float | str | None] = dict(event.features)
        if rng.random() < 0.01:
            features["x"] = None if rng.random() < 0.5 else "oops"
        if i >= 3000:
            features["late"] = rng.gauss(0, 1)
        if 4000 <= i < 4100:
            features["z"] = 50.0
        prediction = event.prediction if i < 5500 or i % 7 else "c"
        observations.append(
            event.model_copy(update={"features": features, "prediction": prediction})
        )
        outcomes.append(replace(outcome, prediction=prediction))
        if i >= 30:
            observations.append(outcomes[i - 30])
    return observations


def run(bank: DetectorBank, observations: list[Observation], sizes: list[int]) -> list[DriftAlert]:
    alerts: list[DriftAlert] = []
    start = 0
    for size in sizes:
        alerts += bank.observe(observations[start : start + size])
        start += size
    return alerts + bank.observe(observations[start:])


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_batches_of_any_size_give_the_alerts_and_summary_of_one_at_a_time(seed: int) -> None:
    observations = dirty_stream()
    one_by_one = DetectorBank("churn")
    expected = run(one_by_one, observations, [1] * len(observations))
    assert {a.signal for a in expected} >= {"error_rate", "feature:x", "invalid:z"}
    assert any(a.explanation is not None for a in expected), "explanations compared too"
    rng = random.Random(seed)
    sizes = [rng.choice([2, 17, 300, 1500]) for _ in range(len(observations) // 50)] if seed else []
    batched = DetectorBank("churn")
    assert run(batched, observations, sizes) == expected
    assert batched.summary() == one_by_one.summary()


def test_a_restored_bank_goes_on_exactly_and_saves_only_what_changed() -> None:
    observations = dirty_stream()
    original = DetectorBank("churn")
    original.observe(observations[:9000])
    restored = DetectorBank.from_pieces("churn", original.state_pieces())
    assert restored.summary() == original.summary()
    assert restored.take_changed_pieces() == {}, "a restored bank has nothing new to save"
    assert restored.observe(observations[9000:]) == original.observe(observations[9000:])
    assert restored.summary() == original.summary()
    outcome = next(o for o in reversed(observations) if isinstance(o, JoinedOutcome))
    original.take_changed_pieces()
    original.observe([replace(outcome, request_id="one-more")])
    assert set(original.take_changed_pieces()) == {  # not the volume: it takes predictions
        BANK_PIECE,
        "source/estimate",
        "source/explain",
        "source/label_health",
        "source/positive_class",
        SIGNAL_PIECE + "error_rate",
    }


def test_a_bank_restored_while_its_references_fill_goes_on_exactly() -> None:
    """A feature's piece is not rewritten for a value inside its reference's range, so its
    saved count of reference values falls behind; the value signal's count takes over. (A
    reference that learned past its 1,000 values would take in the shifted values.)"""
    rng = random.Random(3)
    events = [
        event.model_copy(update={"features": {"x": 10.0 if i >= 1000 else rng.gauss(0, 1)}})
        for i, (event, _) in enumerate(stream()[:1500])
    ]
    original = DetectorBank("churn")
    saved: dict[str, bytes] = {}
    for start in range(0, 600, 20):
        original.observe(events[start : start + 20])
        saved.update(original.take_changed_pieces())
    assert decode_piece("feature/x", saved["feature/x"])["seen"] < 600, "written less often"
    restored = DetectorBank.from_pieces("churn", saved)
    assert restored.observe(events[600:]) == original.observe(events[600:])
    assert restored.summary() == original.summary()
    assert original.summary().quality["x"].out_of_range == 500, "every value after it"


@pytest.mark.parametrize(
    ("odd", "count"), [(10.0, "out_of_range"), (None, "missing"), ("text", "wrong_type")]
)
def test_the_pieces_written_as_the_stream_goes_hold_every_quality_count(
    odd: float | str | None, count: str
) -> None:
    """After its reference, a feature's piece changes only with a problem: a value out of its
    range, missing, or of the wrong type. A bank restored from the pieces written batch by
    batch counts each of them."""
    rng = random.Random(5)
    events = [
        event.model_copy(
            update={"features": {"x": odd if i >= 1000 and i % 7 == 0 else rng.gauss(0, 1)}}
        )
        for i, (event, _) in enumerate(stream()[:1500])
    ]
    original = DetectorBank("churn")
    saved: dict[str, bytes] = {}
    for start in range(0, len(events), 20):
        original.observe(events[start : start + 20])
        saved.update(original.take_changed_pieces())
    quality = DetectorBank.from_pieces("churn", saved).summary().quality["x"]
    assert quality == original.summary().quality["x"]
    assert getattr(quality, count) == 72  # i = 1001, 1008, ..., 1498


def test_a_restored_bank_keeps_each_signals_detector_settings() -> None:
    """Settings other than the registry's defaults survive a restore: in the saved state, and
    in the detectors built afresh after each drift, whose firings follow their settings."""
    config = BankConfig(
        signal_detectors={
            "error_rate": [{"name": "adwin", "params": {"delta": 0.05}}, "page_hinkley"],
            "feature:*": [{"name": "page_hinkley", "params": {"threshold": 5.0}}],
            "category:*": [{"name": "g_test", "params": {"clock": 50}}],
        }
    )
    observations = dirty_stream()
    original = DetectorBank("churn", config)
    original.observe(observations[:4000])
    pieces = original.state_pieces()
    restored = DetectorBank.from_pieces("churn", pieces, config)
    assert {name: decode_piece(name, data) for name, data in restored.state_pieces().items()} == {
        name: decode_piece(name, data) for name, data in pieces.items()
    }
    after = restored.observe(observations[4000:])
    assert after == original.observe(observations[4000:])
    assert sum(alert.signal.startswith("feature:") for alert in after) >= 2, "fresh detectors"


def test_a_model_of_a_thousand_features_saves_pieces_of_at_most_64_kib() -> None:
    rng = random.Random(3)
    events = [
        PredictionEvent(
            request_id=f"r{i}",
            model_id="wide",
            model_version="1",
            timestamp=T0 + timedelta(seconds=i / 10),
            features={f"f{j:04d}": rng.gauss(0, 1) for j in range(1000)},
            prediction=rng.choice(["a", "b"]),
            score=rng.random(),
        )
        for i in range(600)
    ]
    config = BankConfig(max_feature_signals=1000)
    bank = DetectorBank("wide", config)
    bank.observe(events)
    pieces = bank.state_pieces()
    assert len(pieces) > 3000  # a piece per signal and per feature
    assert max(len(piece) for piece in pieces.values()) <= 64 * 1024
    assert len(pieces[BANK_PIECE]) < 2048, "the model's own piece does not grow with its width"
    restored = DetectorBank.from_pieces("wide", pieces, config)
    assert restored.summary() == bank.summary()


def test_a_signal_that_saw_only_zeros_saves_its_count_and_goes_on_exactly_when_restored() -> None:
    """``invalid:z`` sees zeros until the burst at 4,000: its piece is written once, its count
    at every save; restored from what was saved as it changed, the bank goes on as the one
    that never stopped (the burst fires on the same value)."""
    observations = dirty_stream()
    original, saving = DetectorBank("churn"), DetectorBank("churn")
    store: dict[str, bytes] = {}
    for start in range(0, 3000, 100):
        batch = observations[start : start + 100]
        assert saving.observe(batch) == original.observe(batch)
        taken = saving.take_changed_pieces()
        if start > 0:
            assert SIGNAL_PIECE + "invalid:z" not in taken
            assert DEFERRED_PIECE in taken
        store.update(taken)
    restored = DetectorBank.from_pieces("churn", store)
    later = run(original, observations[3000:], [100])
    assert run(restored, observations[3000:], [100]) == later
    assert any(a.signal == "invalid:z" for a in later), "the burst is alerted"
    assert restored.summary() == original.summary()


def test_a_count_older_than_its_signals_own_piece_is_left_out() -> None:
    """A runtime without transactions (Faust) can save a signal's piece after its first 1 and
    lose the ``deferred`` piece of the same commit: the signal's own piece wins."""
    observations = dirty_stream()
    bank = DetectorBank("churn")
    burst = next(
        i
        for i, o in enumerate(observations)
        if isinstance(o, PredictionEvent) and o.features.get("z") == 50.0
    )
    bank.observe(observations[:burst])
    store = bank.take_changed_pieces()
    bank.observe(observations[burst : burst + 50])  # invalid:z sees its first 1s
    piece = SIGNAL_PIECE + "invalid:z"
    store[piece] = bank.take_changed_pieces()[piece]  # and not the deferred piece
    restored = DetectorBank.from_pieces("churn", store)
    assert restored.summary().signals["invalid:z"] == bank.summary().signals["invalid:z"]


def test_a_piece_of_another_format_or_holding_an_object_is_refused() -> None:
    bank = DetectorBank("churn")
    bank.observe(list(dirty_stream()[:100]))
    piece = bank.state_pieces()[BANK_PIECE]
    piece_format, name, value = pickle.loads(piece)
    with pytest.raises(SnapshotFormatError, match="format"):
        decode_piece(BANK_PIECE, pickle.dumps((min(READ_FORMATS) - 1, name, value)))
    with pytest.raises(SnapshotFormatError, match="may not hold"):
        decode_piece(BANK_PIECE, pickle.dumps((piece_format, name, DetectorBank("x"))))
