"""Detector settings for a false-alarm budget (:mod:`detectors.budget`), and the detector file.

The reference is 5,000 values of a process (N(0, 1), or errors at rate 0.1); a *fresh* stream
is another draw of the same process, run through the bank's own :class:`SignalMonitor`.
Budgets are high (hundreds per million) so that a few hundred thousand values measure them,
and the search runs on at most 200,000 values per setting, where 10 to 100 alarms give each
measured rate an error of 10 to 30%: a fresh stream must stay within 1.5 times the budget.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from detectors.budget import (
    KNOBS,
    calibrate_detector,
    detection_delays,
    median_delay,
)
from detectors.config import DetectorConfig, DetectorFileError, read_detector_file
from detectors.monitor import SignalMonitor
from detectors.registry import DetectorSpec
from detectors.signals import ERROR_RATE, Signal
from stream_app.settings import DetectorSettings, Settings

NUMERIC = Signal("feature:x", "data", binary=False)


def process(signal: Signal, n: int, seed: int, shift: float = 0.0) -> list[float]:
    """``n`` values of the signal's process, its mean moved by ``shift`` (rate or sd)."""
    rng = np.random.default_rng(seed)
    if signal.binary:
        return [float(x) for x in rng.random(n) < 0.1 + shift]
    return [float(x) for x in rng.normal(shift, 1.0, n)]


def firings(specs: list[DetectorSpec], signal: Signal, values: list[float]) -> list[int]:
    monitor = SignalMonitor(signal, specs, recent_window=500)
    return [i for i, value in enumerate(values) for _ in monitor.update(value)]


def test_the_knob_is_rounded_toward_fewer_alarms() -> None:
    assert KNOBS["adwin"].rounded(0.012345) == 0.012
    assert KNOBS["page_hinkley"].rounded(28.01) == 29.0
    assert KNOBS["page_hinkley"].rounded(30.0) == 30.0
    ladder = list(KNOBS["adwin"].ladder(3))
    assert ladder == pytest.approx([0.5, 0.5 / 10**0.5, 0.05])


def test_the_search_brackets_the_budget_and_lands_between_the_settings_tried() -> None:
    reference = process(NUMERIC, 5000, seed=1)
    chosen = calibrate_detector(
        DetectorSpec(name="adwin", params={"clock": 32}),
        reference,
        budget=100,
        binary=False,
        max_values=200_000,
    )
    assert chosen.method == "interpolated"
    rates = [probe.per_million for probe in chosen.probes]
    assert rates == sorted(rates, reverse=True)
    assert rates[-1] <= 100 < rates[-2]
    delta = chosen.spec.params["delta"]
    assert isinstance(delta, float)
    assert chosen.probes[-1].value < delta < chosen.probes[-2].value
    assert chosen.spec.params["clock"] == 32  # the other parameters stay
    assert chosen.false_alarms_per_million is not None
    assert chosen.false_alarms_per_million <= 100


@pytest.mark.parametrize(
    ("signal", "names", "shift"),
    [(NUMERIC, ["adwin", "page_hinkley"], 1.0), (ERROR_RATE, ["adwin", "ddm"], 0.2)],
)
def test_calibrated_detectors_keep_their_budget_on_a_fresh_stream_and_catch_a_shift(
    signal: Signal, names: list[str], shift: float
) -> None:
    budget, fresh = 400.0, 400_000  # false alarms per million; fresh values
    reference = process(signal, 5000, seed=10)
    specs = [
        calibrate_detector(
            DetectorSpec(name=name),
            reference,
            budget=budget / len(names),
            binary=signal.binary,
            max_values=200_000,
        ).spec
        for name in names
    ]
    alarms = len(firings(specs, signal, process(signal, fresh, seed=11)))
    expected = budget * fresh / 1e6
    assert 0.2 * expected < alarms < 1.5 * expected, alarms
    drifting = process(signal, 5000, seed=12) + process(signal, 2000, seed=13, shift=shift)
    assert next(i for i in firings(specs, signal, drifting) if i >= 5000) < 5000 + 300


def test_detectors_without_a_knob_and_constant_signals_keep_their_settings() -> None:
    reference = process(NUMERIC, 1000, seed=2)
    kswin = calibrate_detector(DetectorSpec(name="kswin"), reference, budget=1, binary=False)
    assert (kswin.method, kswin.false_alarms_per_million) == ("kept", None)
    constant = [1.0] * 1000
    adwin = calibrate_detector(
        DetectorSpec(name="adwin"), constant, budget=1, binary=False, max_values=20_000
    )
    assert (adwin.spec, adwin.method, adwin.false_alarms_per_million) == (
        DetectorSpec(name="adwin"),
        "kept",
        0.0,
    )
    assert detection_delays([adwin.spec], constant, binary=False, shift_sd=1.0) == []


def test_the_median_delay_counts_a_miss_as_the_longest() -> None:
    assert median_delay([10, 30, None]) == 30
    assert median_delay([10, None, None]) is None
    assert median_delay([]) is None


def detector_file(path: Path, models: object) -> Path:
    path.write_text(json.dumps({"models": models, "false_alarms_per_million": 1.0}))
    return path


def test_the_detector_file_sets_each_models_signals_under_its_settings(tmp_path: Path) -> None:
    calibrated = [{"name": "adwin", "params": {"delta": 0.01}}]
    path = detector_file(
        tmp_path / "detectors.json", {"fraud": {"score": {"detectors": calibrated}}}
    )
    config = DetectorConfig.from_settings(
        DetectorSettings(
            file=path,
            signal_detectors={"feature:*": []},
            models={"fraud": {"alert_cooldown_events": 5}},
        )
    )
    score = Signal("score", "data", binary=False)
    fraud, other = config.for_model("fraud"), config.for_model("churn")
    assert fraud.detectors_for(score) == (DetectorSpec(name="adwin", params={"delta": 0.01}),)
    assert other.detectors_for(score) == (DetectorSpec(name="adwin", params={"delta": 1e-4}),)
    assert fraud.signal_detectors["feature:*"] == ()  # the settings' own signals stay
    assert fraud.alert_cooldown_events == 5  # and their per-model fields win


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (None, "cannot read: No such file or directory"),
        ("{not json", "not JSON: "),
        (
            '{"models": {"m": {"score": {"detectors": ["cusum"]}}}}',
            "models.m.score.detectors.0.name: unknown detector 'cusum'",
        ),
        ('{"models": {}, "budget": 1}', "budget: Extra inputs are not permitted"),
    ],
)
def test_a_missing_or_invalid_file_is_one_line_naming_the_field(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, content: str | None, reason: str
) -> None:
    path = tmp_path / "detectors.json"
    if content is not None:
        path.write_text(content)
    with pytest.raises(DetectorFileError) as raised:
        read_detector_file(path)
    assert str(raised.value).startswith(f"{path}: {reason}")
    assert "\n" not in str(raised.value)
    monkeypatch.setenv("DRIFTSTREAM_DETECTORS__FILE", str(path))
    with pytest.raises(ValueError, match=r"detectors\.file") as invalid:
        Settings()
    assert reason in str(invalid.value)
