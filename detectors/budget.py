"""Detector settings chosen for a false-alarm budget, from a reference stream of a signal.

How to choose ADWIN's ``delta`` or a Page-Hinkley threshold? From the values a signal took in
normal traffic (the *reference*), :func:`calibrate_detector` finds the most sensitive setting
of a detector's knob (:data:`KNOBS`) whose expected false-alarm rate is within a budget, in
false alarms per million values of the signal:

- Streams of the same process are the reference *resampled* with replacement (a bootstrap):
  as long as needed, with the values' distribution and without their order, so a slow change
  inside the reference is not taken for normal. It assumes independent values: a signal whose
  values depend on the previous ones raises more alarms than estimated.
- The detector runs on them as the bank runs it (rebuilt after each alarm), at settings from
  the most sensitive on (the knob's ladder), each until ``stop_alarms`` alarms or
  ``max_values`` values, all on the same resampled stream. The walk stops at the first setting
  within budget, or at the first with fewer than ``min_alarms`` alarms (a lower rate is not
  measurable in ``max_values`` values).
- False-alarm rates fall geometrically along each knob: ``log(rate)`` is nearly linear in
  ``log(delta)`` (ADWIN, HDDM) and in the threshold (Page-Hinkley, DDM). A line through the
  last three measured settings, weighted by their alarm counts, gives the setting at the
  budget: interpolated when the walk reached the budget, extrapolated when it did not.
- The setting is rounded to two significant digits, toward fewer alarms.

:func:`detection_delays` measures what the budget costs: the values a signal's detectors take
to detect a standard shift (its mean moved up by ``shift_sd`` standard deviations of the
reference) after ``before`` normal values.

>>> import numpy as np
>>> reference = np.random.default_rng(0).normal(0.0, 1.0, 5000).tolist()
>>> adwin = calibrate_detector(DetectorSpec(name="adwin"), reference, budget=200,
...     binary=False, max_values=200_000)
>>> adwin.spec.params, round(adwin.false_alarms_per_million), adwin.method
({'delta': 0.27}, 198, 'interpolated')
>>> delays = detection_delays([adwin.spec], reference, binary=False, shift_sd=1.0, runs=5)
>>> delays, median_delay(delays)
([24, 24, 24, 56, 24], 24)
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from itertools import chain
from types import MappingProxyType
from typing import Literal

import numpy as np

from detectors.registry import REGISTRY, DetectorSpec, build_detector


@dataclass(frozen=True, slots=True)
class Knob:
    """The parameter of a detector that trades false alarms against detection delay.

    The ladder starts at ``first`` (many alarms) and goes toward fewer: ``first * step ** k``
    for a ``log`` knob (a confidence, ``step`` < 1), ``first + step * k`` otherwise (a
    threshold).
    """

    param: str
    first: float
    step: float
    log: bool

    def ladder(self, steps: int = 40) -> Iterator[float]:
        """The settings to try, from the most sensitive."""
        for k in range(steps):
            yield self.first * self.step**k if self.log else self.first + self.step * k

    def position(self, value: float) -> float:
        """Where ``value`` lies on the ladder: increasing toward fewer alarms."""
        return -math.log(value) if self.log else value

    def at(self, position: float) -> float:
        """The setting at a :meth:`position`."""
        return math.exp(-position) if self.log else position

    def rounded(self, value: float) -> float:
        """``value`` to two significant digits, toward fewer alarms."""
        scale = 10.0 ** (math.floor(math.log10(value)) - 1)
        units = math.floor(value / scale + 1e-9) if self.log else math.ceil(value / scale - 1e-9)
        return float(f"{units * scale:.2g}")


KNOBS: Mapping[str, Knob] = MappingProxyType(
    {
        "adwin": Knob("delta", first=0.5, step=10**-0.5, log=True),
        "hddm_a": Knob("drift_confidence", first=0.5, step=10**-0.5, log=True),
        "hddm_w": Knob("drift_confidence", first=0.5, step=10**-0.5, log=True),
        "page_hinkley": Knob("threshold", first=5.0, step=5.0, log=False),
        "ddm": Knob("drift_threshold", first=1.5, step=0.5, log=False),
    }
)
"""The detectors with a knob; EDDM and KSWIN have none here and keep their settings."""

Method = Literal["interpolated", "extrapolated", "most sensitive", "kept"]
"""How a setting was found: along the knob from the measured rates, the ladder's first (it is
within budget), or none (the spec as given: no knob, or it hardly fires at any setting)."""


@dataclass(frozen=True, slots=True)
class Probe:
    """The false alarms of one setting on the resampled stream."""

    value: float
    alarms: int
    values: int

    @property
    def per_million(self) -> float:
        return self.alarms / self.values * 1e6


@dataclass(frozen=True, slots=True)
class BudgetedDetector:
    """A detector with its knob set for a budget (:data:`Method`: how), the false alarms per
    million values expected of it (None: kept without knob, not measured), and the settings
    tried."""

    spec: DetectorSpec
    false_alarms_per_million: float | None
    method: Method
    probes: tuple[Probe, ...]


class Resampler:
    """Streams of a signal's process: its reference values resampled with replacement.

    Parameters
    ----------
    reference
        The signal's values in normal traffic (at least two).
    binary
        The signal takes 0/1 values: a shifted stream moves its rate, not its values.
    """

    def __init__(self, reference: Sequence[float], *, binary: bool) -> None:
        if len(reference) < 2:
            raise ValueError("a reference needs at least two values")
        self.values = np.asarray(reference, dtype=float)
        self.binary = binary
        self.mean = float(self.values.mean())
        self.std = float(self.values.std())

    def draw(self, rng: np.random.Generator, n: int, shift_sd: float = 0.0) -> np.ndarray:
        """``n`` values, their mean moved up by ``shift_sd`` standard deviations."""
        if self.binary and shift_sd:
            rate = min(1.0, self.mean + shift_sd * self.std)
            return (rng.random(n) < rate).astype(float)
        return self.values[rng.integers(0, len(self.values), n)] + shift_sd * self.std


def _inputs(spec: DetectorSpec, values: np.ndarray) -> list[float] | list[bool]:
    """What the detector is fed, as :class:`~detectors.monitor.SignalMonitor` feeds it:
    binary-only detectors take ``value == 1.0``."""
    if REGISTRY[spec.name].binary_only:
        return (values == 1.0).tolist()  # type: ignore[no-any-return]
    return values.tolist()  # type: ignore[no-any-return]


def _alarms(spec: DetectorSpec, values: Iterable[float | bool]) -> Iterator[int]:
    """The positions (from 1) of ``spec``'s alarms on ``values``; it is rebuilt after each
    alarm, as the bank does."""
    detector = build_detector(spec)
    for at, value in enumerate(values, start=1):
        detector.update(value)
        if detector.drift_detected:
            yield at
            detector = build_detector(spec)


def false_alarms(
    spec: DetectorSpec,
    resampler: Resampler,
    *,
    max_values: int,
    stop_alarms: int,
    seed: int,
    chunk: int = 65_536,
) -> tuple[int, int]:
    """Alarms and values seen: ``spec`` on a resampled stream until ``stop_alarms`` alarms or
    ``max_values`` values; the same ``seed``, the same stream."""
    rng = np.random.default_rng(seed)
    sizes = [chunk] * (max_values // chunk) + [max_values % chunk]
    stream = chain.from_iterable(_inputs(spec, resampler.draw(rng, n)) for n in sizes if n)
    alarms = 0
    for alarms, at in enumerate(_alarms(spec, stream), start=1):
        if alarms == stop_alarms:
            return alarms, at
    return alarms, max_values


def calibrate_detector(
    spec: DetectorSpec,
    reference: Sequence[float],
    *,
    budget: float,
    binary: bool,
    max_values: int = 1_000_000,
    stop_alarms: int = 100,
    min_alarms: int = 10,
    seed: int = 0,
) -> BudgetedDetector:
    """``spec`` with its knob set so that it raises about ``budget`` false alarms per million
    values of a stream like ``reference`` (at most, but for the estimate's error), and that
    rate.

    Parameters
    ----------
    spec
        The detector; its other parameters stay as they are.
    reference
        The signal's values in normal traffic.
    budget
        False alarms per million values allowed.
    binary
        The signal takes 0/1 values.
    max_values, stop_alarms, min_alarms
        Each setting runs on at most ``max_values`` resampled values, stopping at
        ``stop_alarms`` alarms; one with fewer than ``min_alarms`` ends the walk.
    seed
        The resampled stream (the same for every setting).
    """
    knob = KNOBS.get(spec.name)
    if knob is None:
        return BudgetedDetector(spec, None, "kept", ())
    resampler = Resampler(reference, binary=binary)
    probes: list[Probe] = []
    for value in knob.ladder():
        setting = _set(spec, knob, value)
        alarms, seen = false_alarms(
            setting, resampler, max_values=max_values, stop_alarms=stop_alarms, seed=seed
        )
        probes.append(Probe(value, alarms, seen))
        if alarms < min_alarms or probes[-1].per_million <= budget:
            break
    first = probes[0]
    if len(probes) == 1 and first.alarms >= min_alarms:  # the most sensitive is within budget
        return BudgetedDetector(
            _set(spec, knob, first.value), first.per_million, "most sensitive", (first,)
        )
    fitted = [p for p in probes if p.alarms][-3:]
    line = _log_rate_line(knob, fitted)
    if line is None:
        alarms, seen = false_alarms(
            spec, resampler, max_values=max_values, stop_alarms=stop_alarms, seed=seed
        )
        return BudgetedDetector(spec, alarms / seen * 1e6, "kept", tuple(probes))
    slope, intercept = line
    position = max((math.log(budget) - intercept) / slope, knob.position(knob.first))
    value = knob.rounded(knob.at(position))
    expected = math.exp(intercept + slope * knob.position(value))
    reached = min(p.per_million for p in fitted) <= budget
    method: Method = "interpolated" if reached else "extrapolated"
    return BudgetedDetector(_set(spec, knob, value), expected, method, tuple(probes))


def _log_rate_line(knob: Knob, probes: Sequence[Probe]) -> tuple[float, float] | None:
    """Slope and intercept of ``log(rate)`` against the knob's position, weighted by alarm
    counts; None without two probes, or if the rate does not fall along the knob (the detector
    hardly fires at any setting, or noise hides the fall)."""
    if len(probes) < 2:
        return None
    slope, intercept = np.polyfit(
        [knob.position(p.value) for p in probes],
        [math.log(p.per_million) for p in probes],
        deg=1,
        w=[math.sqrt(p.alarms) for p in probes],
    )
    return (float(slope), float(intercept)) if slope < 0 else None


def _set(spec: DetectorSpec, knob: Knob, value: float) -> DetectorSpec:
    """``spec`` with its knob at ``value``."""
    return DetectorSpec(
        name=spec.name, params={**spec.params, knob.param: value}, warnings=spec.warnings
    )


def detection_delays(
    specs: Sequence[DetectorSpec],
    reference: Sequence[float],
    *,
    binary: bool,
    shift_sd: float,
    runs: int = 20,
    before: int = 5000,
    after: int = 5000,
    seed: int = 0,
) -> list[int | None]:
    """Per run: the values after a shift of ``shift_sd`` standard deviations until the first
    of ``specs`` fires (None: not within ``after`` values), after ``before`` normal values.
    Empty for a constant reference."""
    resampler = Resampler(reference, binary=binary)
    if resampler.std == 0:
        return []
    delays: list[int | None] = []
    for run in range(runs):
        rng = np.random.default_rng([seed, run])
        normal, shifted = resampler.draw(rng, before), resampler.draw(rng, after, shift_sd)
        hits = [at for spec in specs if (at := _first_alarm(spec, normal, shifted)) is not None]
        delays.append(min(hits, default=None))
    return delays


def _first_alarm(spec: DetectorSpec, normal: np.ndarray, shifted: np.ndarray) -> int | None:
    """How many ``shifted`` values ``spec`` takes to fire after the ``normal`` ones; None if
    it does not."""
    values = chain(_inputs(spec, normal), _inputs(spec, shifted))
    return next((at - len(normal) for at in _alarms(spec, values) if at > len(normal)), None)


def median_delay(delays: Sequence[int | None]) -> int | None:
    """The median of ``delays``, a miss counting as the longest; None if most were missed
    (or none measured)."""
    if not delays or sum(d is None for d in delays) * 2 >= len(delays):
        return None
    return int(statistics.median_low(math.inf if d is None else d for d in delays))
