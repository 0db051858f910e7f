"""One conformance suite that every registered detector, with its defaults, runs through.

Each detector runs on the signal types it accepts (binary 0/1 error streams, numeric
streams) through a :class:`SignalMonitor`, exactly as the bank runs it. Stable streams are
20,000 values (Bernoulli(0.1), N(0, 1)), except for KSWIN, whose Kolmogorov-Smirnov test on
every value costs about half a millisecond: 5,000 values there (it stayed silent on 4 x
10,000 when its defaults were chosen). Abrupt shifts: error rate 0.1 -> 0.4, N(0, 1) ->
N(1.5, 1), after 5,000 values. A detector of rates (``poisson_cusum``, on ``volume``) runs on
rates of Poisson counts instead (100 per 10 s interval), shifted to 1.5 times the rate.
"""

from __future__ import annotations

import pickle
from collections.abc import Sequence

import numpy as np
import pytest

from detectors.config import BankConfig
from detectors.monitor import CategoryMonitor, Firing, Monitor, SignalMonitor, monitor_for
from detectors.registry import REGISTRY, DetectorSpec, accepts
from detectors.signals import Signal, SignalValue

BINARY = Signal("error_rate", "concept", binary=True)
NUMERIC = Signal("feature:x", "data", binary=False)
CATEGORICAL = Signal("category:x", "data", binary=False, categorical=True)
RATE = Signal("volume", "data", binary=False)
RATE_DETECTORS = {"poisson_cusum"}
"""Detectors of the rate of a count stream: they run on :data:`RATE` instead of NUMERIC."""
CATEGORIES = [f"zip{i}" for i in range(9)]
"""Nine equally likely values, as the simulator's zip codes."""


def _kind(signal: Signal) -> str:
    return "binary" if signal.binary else "categorical" if signal.categorical else "numeric"


CASES = [
    pytest.param(name, signal, id=f"{name}-{_kind(signal)}")
    for name in REGISTRY
    for signal in (BINARY, RATE if name in RATE_DETECTORS else NUMERIC, CATEGORICAL)
    if accepts(name, signal)
]

SHIFT_AT = 5000
MAX_DELAY = {"eddm": 2500}
"""Detection delay allowed after the shift (default 1,000): EDDM watches the distance
between errors and is slow on abrupt shifts at low error rates."""


def stable(signal: Signal, n: int, seed: int) -> list[SignalValue]:
    rng = np.random.default_rng(seed)
    if signal.categorical:
        return [str(x) for x in rng.choice(CATEGORIES, n)]
    if signal.binary:
        return [float(x) for x in rng.random(n) < 0.1]
    if signal is RATE:
        return [float(x) / 10 for x in rng.poisson(100, n)]
    return [float(x) for x in rng.normal(0.0, 1.0, n)]


def shifted(signal: Signal, n_before: int, n_after: int, seed: int) -> list[SignalValue]:
    """The stable stream, then a shift: the error rate 0.1 -> 0.4, the mean by 1.5 standard
    deviations, or one category's share 1/9 -> 0.4."""
    rng = np.random.default_rng(seed)
    if signal.categorical:
        after = [0.4] + [0.6 / 8] * 8
        values = [*rng.choice(CATEGORIES, n_before), *rng.choice(CATEGORIES, n_after, p=after)]
        return [str(x) for x in values]
    if signal.binary:
        errors = np.concatenate([rng.random(n_before) < 0.1, rng.random(n_after) < 0.4])
        return [float(x) for x in errors]
    if signal is RATE:
        rates = np.concatenate([rng.poisson(100, n_before), rng.poisson(150, n_after)])
        return [float(x) / 10 for x in rates]
    return [
        float(x) for x in np.concatenate([rng.normal(0, 1, n_before), rng.normal(1.5, 1, n_after)])
    ]


def monitor(name: str, signal: Signal) -> Monitor:
    return monitor_for(signal, [DetectorSpec(name=name)], recent_window=500)


def feed(target: Monitor, value: SignalValue) -> list[Firing]:
    """One value to ``target``: a category to a categorical monitor, a number to the others."""
    if isinstance(target, CategoryMonitor):
        assert isinstance(value, str)
        return target.update(value)
    assert not isinstance(value, str)
    return target.update(value)


def run(target: Monitor, values: list[SignalValue]) -> list[tuple[int, Firing]]:
    return [(i, firing) for i, value in enumerate(values) for firing in feed(target, value)]


@pytest.mark.parametrize(("name", "signal"), CASES)
def test_same_input_gives_same_firings(name: str, signal: Signal) -> None:
    values = shifted(signal, 2000, 1000, seed=11)
    first = run(monitor(name, signal), values)
    assert first, "the shift should fire at least once"
    assert run(monitor(name, signal), values) == first


@pytest.mark.parametrize(("name", "signal"), CASES)
def test_pickle_mid_stream_continues_identically(name: str, signal: Signal) -> None:
    """A detector pickled before a shift fires on it where the original does: the snapshot
    holds the state it needs (a fresh detector, or one that lost its history, fires elsewhere
    or not at all)."""
    values = shifted(signal, 2000, 1000, seed=12)
    original = monitor(name, signal)
    snapshot_at = 1900  # past every detector's warm-up, before the shift
    assert run(original, values[:snapshot_at]) == [], "fired before the shift"
    restored = pickle.loads(pickle.dumps(original))
    rest = values[snapshot_at:]
    expected = run(original, rest)
    assert expected, "the shift after the snapshot should fire"
    assert expected[0][0] >= 2000 - snapshot_at, "fired before the shift"
    assert run(restored, rest) == expected


@pytest.mark.parametrize(("name", "signal"), CASES)
def test_no_drift_on_a_long_stable_stream(name: str, signal: Signal) -> None:
    n = 5000 if name == "kswin" else 20_000
    assert run(monitor(name, signal), stable(signal, n, seed=3)) == []


@pytest.mark.parametrize(("name", "signal"), CASES)
def test_detects_an_abrupt_shift(name: str, signal: Signal) -> None:
    values = shifted(signal, SHIFT_AT, 3000, seed=4)
    firings = run(monitor(name, signal), values)
    assert firings, "no detection"
    first, firing = firings[0]
    assert SHIFT_AT <= first < SHIFT_AT + MAX_DELAY.get(name, 1000)
    assert firing.severity == "critical"
    assert firing.after.mean > firing.before.mean


def test_warning_zone_alerts_only_when_asked() -> None:
    values = shifted(BINARY, SHIFT_AT, 3000, seed=4)
    quiet = run(SignalMonitor(BINARY, [DetectorSpec(name="ddm")], 500), values)
    loud = run(SignalMonitor(BINARY, [DetectorSpec(name="ddm", warnings=True)], 500), values)
    assert {firing.severity for _, firing in quiet} == {"critical"}
    assert [firing.severity for _, firing in loud][:2] == ["warning", "critical"]


def test_specs_are_validated() -> None:
    with pytest.raises(ValueError, match="unknown detector"):
        DetectorSpec(name="cusum")
    with pytest.raises(ValueError, match="bad parameters"):
        DetectorSpec(name="adwin", params={"threshold": 3.0})


def test_g_test_is_faster_than_per_value_adwin_when_several_shares_move() -> None:
    """Why categories get the G-test: three values gain 0.05 of share and three lose it. The
    G-test sees one shift; ADWIN (the data-signal default) on each value's 0/1 indicator sees
    nine small ones. Measured on 10 seeds: G-test 399-699 values after the shift (median 499),
    per-value ADWIN 471-1463 (median 887)."""
    after = np.full(9, 1 / 9)
    after[:3] += 0.05
    after[3:6] -= 0.05
    g_test, adwin = [], []
    for seed in range(10):
        rng = np.random.default_rng(seed)
        values = [
            str(x)
            for x in [*rng.choice(CATEGORIES, SHIFT_AT), *rng.choice(CATEGORIES, 5000, p=after)]
        ]
        g_test.append(_first_firing([monitor("g_test", CATEGORICAL)], values, indicator=False))
        indicators = [
            SignalMonitor(Signal(f"x={v}", "data", binary=True), BankConfig().data_detectors, 500)
            for v in CATEGORIES
        ]
        adwin.append(_first_firing(indicators, values, indicator=True))
    assert all(SHIFT_AT <= at < SHIFT_AT + 5000 for at in g_test + adwin), (g_test, adwin)
    g_delay, adwin_delay = np.median(g_test) - SHIFT_AT, np.median(adwin) - SHIFT_AT
    assert g_delay < 0.75 * adwin_delay, (g_test, adwin)


def _first_firing(
    monitors: Sequence[Monitor], values: Sequence[SignalValue], *, indicator: bool
) -> int:
    """The index of the first value on which any monitor fired (len(values): never)."""
    for at, value in enumerate(values):
        for index, target in enumerate(monitors):
            fed: SignalValue = float(value == CATEGORIES[index]) if indicator else value
            if feed(target, fed):
                return at
    return len(values)
